"""Hostile inputs, each fed exactly as a user or client would: no crash, no lost batch, a clear error naming it."""

import json
import re
import socket
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from skimage import data as skimage_data
from test_serving import start_server, stop

from resdropnet.cli import build_parser, main
from resdropnet.images import ImageError, decode_image
from resdropnet.inference import EmotionRecognizer
from resdropnet.weights import WeightsError, shipped_folder


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """NASA's public-domain portrait of Eileen Collins (scikit-image): a real photo with one face."""
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def astronaut_jpeg(astronaut) -> bytes:
    return cv2.imencode(".jpg", astronaut)[1].tobytes()


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Defaults for every limit but short stall timeouts, so that the stalled clients below end soon."""
    process, base, _spool = start_server(tmp_path_factory.mktemp("hardening"), "--header-timeout", "1.5",
                                         "--body-timeout", "1.5")
    yield base
    stop(process)


# 1. Extreme aspect ratios


@pytest.mark.parametrize("shape", [(10, 10000), (10000, 10), (1, 100000), (1, 1)])
def test_extreme_aspect_ratios_are_processed_everywhere(shape, astronaut, astronaut_jpeg, server, tmp_path, capsys):
    sliver = np.full((*shape, 3), 200, np.uint8)
    assert EmotionRecognizer().predict(sliver) == []

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "sliver.png").write_bytes(png(sliver))
    (folder / "astronaut.jpg").write_bytes(astronaut_jpeg)
    assert main(["predict", str(folder), "--quiet"]) == 0
    records = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert records["sliver.png"]["faces"] == [] and (records["sliver.png"]["height"], records["sliver.png"]["width"]) == shape
    assert len(records["astronaut.jpg"]["faces"]) == 1

    files = [("files", ("sliver.png", png(sliver), "image/png")), ("files", ("astronaut.jpg", astronaut_jpeg, "image/jpeg"))]
    response = httpx.post(f"{server}/v1/predict/batch", files=files, timeout=60)
    assert response.status_code == 200, response.text
    sliver_result, photo_result = response.json()["results"]
    assert sliver_result["faces"] == [] and len(photo_result["faces"]) == 1


# 2. Decoding off the event loop; pixels bounded per request and in flight


def test_pixels_over_the_request_budget_are_refused_before_decoding(server):
    big = png(np.zeros((6600, 6000, 3), np.uint8))  # 39.6 Mpixels in about 120 KB
    files = [("files", (f"{i}.png", big, "image/png")) for i in range(16)]
    response = httpx.post(f"{server}/v1/predict/batch", files=files, timeout=60)
    assert response.status_code == 413
    assert "633,600,000 pixels, more than the limit of 50,000,000 per request" in response.json()["detail"]
    assert httpx.get(f"{server}/healthz").json()["pixels_in_flight"] == 0


def test_the_server_answers_while_a_heavy_image_is_decoded_and_classified(server, astronaut):
    tiled = np.tile(astronaut, (13, 12, 1))[:6600, :6000]  # 39.6 Mpixels of photo, under 10 MB as a JPEG
    big = cv2.imencode(".jpg", tiled, [cv2.IMWRITE_JPEG_QUALITY, 60])[1].tobytes()
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        response=httpx.post(f"{server}/v1/predict", files={"file": ("big.jpg", big, "image/jpeg")}, timeout=120)))
    worker.start()
    seen = []
    while worker.is_alive():
        seen.append(httpx.get(f"{server}/healthz", timeout=30).json())
    worker.join()
    assert result["response"].status_code == 200
    assert any(h["inference_running"] and h["pixels_in_flight"] == 6600 * 6000 for h in seen), seen[:3]


def test_the_pixel_budget_makes_a_request_wait_for_room():
    import anyio

    from resdropnet.serving.limits import PixelBudget

    async def scenario():
        budget, order = PixelBudget(100), []

        async def second():
            await budget.acquire(60)
            order.append("second in")

        await budget.acquire(60)
        async with anyio.create_task_group() as group:
            group.start_soon(second)
            await anyio.sleep(0.05)
            order.append("first out")
            await budget.release(60)
        return order, budget.used

    assert anyio.run(scenario) == (["first out", "second in"], 60)


# 3. A timeout keeps the slot until the work really stops


def test_a_timed_out_request_holds_the_slot_until_its_work_stops(tmp_path):
    process, base, _spool = start_server(tmp_path, "--timeout", "0.5", "--detector", "haar-full")
    try:
        noise = cv2.imencode(".jpg", np.random.default_rng(1).integers(0, 255, (2000, 2000, 3), np.uint8))[1].tobytes()
        files = [("files", (f"{i}.jpg", noise, "image/jpeg")) for i in range(4)]
        response = httpx.post(f"{base}/v1/predict/batch", files=files, timeout=120)
        assert response.status_code == 504 and "longer than 0.5 s" in response.json()["detail"]
        health = httpx.get(f"{base}/healthz").json()
        assert health["inference_running"] is False and health["pixels_in_flight"] == 0
    finally:
        stop(process)


def test_work_past_its_deadline_stops_at_the_next_batch(astronaut):
    from resdropnet.inference.recognizer import DeadlineExceeded

    recognizer = EmotionRecognizer()
    with pytest.raises(DeadlineExceeded):
        recognizer.predict_many([astronaut] * 3, deadline=time.monotonic() - 1)
    assert len(recognizer.predict_many([astronaut], deadline=time.monotonic() + 60)[0]) == 1


# 4. JPEGs with bytes after the end-of-image marker


def test_jpegs_with_data_after_the_end_marker_decode(astronaut, astronaut_jpeg, tmp_path):
    expected = decode_image(astronaut_jpeg)
    thumbnail = cv2.imencode(".jpg", cv2.resize(astronaut, (160, 120)))[1].tobytes()
    trailers = {"thumbnail": thumbnail, "half a thumbnail": thumbnail[: len(thumbnail) // 2],
                "maker notes": b"\xff\xda\x00\x0cmaker notes \x00\x01\x02", "zeros": b"\x00" * 4096}
    for name, trailer in trailers.items():
        assert np.array_equal(decode_image(astronaut_jpeg + trailer, name), expected), name
    progressive = cv2.imencode(".jpg", astronaut, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert decode_image(progressive + thumbnail).shape == astronaut.shape
    for cut in (astronaut_jpeg[: len(astronaut_jpeg) // 2], progressive[:-200]):
        with pytest.raises(ImageError, match="cut.jpg: truncated"):
            decode_image(cut, "cut.jpg")
    (tmp_path / "phone.jpg").write_bytes(astronaut_jpeg + thumbnail)
    assert len(EmotionRecognizer().predict(tmp_path / "phone.jpg")) == 1


# 5. Weights metadata is validated before anything is built


def weights_with_config(tmp_path: Path, name: str, config, **metadata) -> Path:
    from safetensors.numpy import save_file

    path = tmp_path / name
    raw = {"config": config if isinstance(config, str) else json.dumps(config), **metadata}
    save_file({"head.weight": np.zeros((7, 256), np.float32)}, str(path), metadata=raw)
    return path


@pytest.mark.parametrize("config, message", [
    ([32, 64], "metadata 'config' is a list, not an object of model fields"),
    ({"widths": [32, 64, 128, 256], "colour": "blue"}, "unknown model config field(s) 'colour'"),
    ({"widths": [65536, 65536, 65536, 65536]}, "widths [65536, 65536, 65536, 65536] outside 4-4096"),
    ({"widths": [4096] * 4, "blocks": [32] * 4}, "more than the limit of 50,000,000"),
    ({"widths": "wide"}, "config field 'widths' must be a list of integers"),
    ({"drop_rate": "high"}, "config field 'drop_rate' must be float"),
    ({"drop_rate": 3.0}, "drop_rate must be in [0, 1)"),
    ({"num_classes": 1000}, "num_classes is 1000, the models predict 7 emotions"),
    ("{not json", "metadata field 'config' is not JSON"),
])
def test_weights_metadata_is_checked_and_every_error_names_the_file(config, message, tmp_path, capsys):
    path = weights_with_config(tmp_path, "hostile.safetensors", config)
    from resdropnet.weights import load_model

    with pytest.raises(WeightsError) as raised:
        load_model(path)
    assert str(raised.value).startswith(str(path)) and message in str(raised.value)
    image = tmp_path / "photo.png"
    image.write_bytes(png(np.zeros((64, 64, 3), np.uint8)))
    assert main(["predict", str(image), "--weights", str(path), "--backend", "torch", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"resdropnet: error: {path}") and message in err and "Traceback" not in err


def test_weights_with_non_finite_values_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    from resdropnet.weights import load_model

    source = shipped_folder("fast") / "model.safetensors"
    state = load_file(str(source))
    state["head.bias"][0] = float("nan")
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
    save_file(state, str(tmp_path / "nan.safetensors"), metadata=metadata)
    with pytest.raises(WeightsError, match="nan.safetensors: tensor 'head.bias' holds NaN"):
        load_model(tmp_path / "nan.safetensors")


# 6. ONNX models are checked at load


def export_module(module, example, path: Path) -> Path:
    import torch

    torch.onnx.export(module.eval(), (example,), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    return path


def test_onnx_models_of_the_wrong_shape_are_refused_at_load(tmp_path, capsys):
    import torch
    from torch import nn

    from resdropnet.inference.backends import OnnxBackend

    wrong_classes = export_module(nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 10)), torch.rand(1, 1, 48, 48),
                                  tmp_path / "ten_classes.onnx")
    wrong_input = export_module(nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 7)), torch.rand(1, 3, 64, 64),
                                tmp_path / "rgb64.onnx")
    with pytest.raises(WeightsError, match=r"ten_classes.onnx: its outputs are \[y \['n', 10\]\]"):
        OnnxBackend(wrong_classes)
    with pytest.raises(WeightsError, match=r"rgb64.onnx: its inputs are \[x tensor\(float\) \['n', 3, 64, 64\]\]"):
        OnnxBackend(wrong_input)
    image = tmp_path / "photo.png"
    image.write_bytes(png(np.zeros((64, 64, 3), np.uint8)))
    assert main(["predict", str(image), "--weights", str(wrong_classes), "--quiet"]) == 1
    assert "ten_classes.onnx: its outputs are" in capsys.readouterr().err


def test_an_onnx_model_whose_output_shape_is_open_is_checked_on_its_first_run(tmp_path):
    import torch
    from torch import nn

    from resdropnet.inference.backends import OnnxBackend

    class Cut(nn.Module):  # its class dimension depends on the input's height: symbolic in the file
        def forward(self, x):
            return torch.flatten(x, 1)[:, : x.shape[2] // 10]

    path = tmp_path / "four.onnx"
    torch.onnx.export(Cut(), (torch.rand(2, 1, 48, 48),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n", 2: "h"}, "y": {0: "n", 1: "classes"}}, dynamo=False)
    with pytest.raises(WeightsError, match=r"four.onnx: returned an output of shape \[1, 4\] for 1 face"):
        OnnxBackend(path)


# 7. CSV rows that the csv module or the pixel parser choked on


def test_csv_rows_with_odd_digits_or_giant_fields_are_row_errors(tmp_path, capsys):
    good = " ".join(["128"] * 2304)
    rows = ["emotion,pixels,Usage", f"3,{good},Training", f"3,{good.replace('128', '²', 1)},Training",
            f"3,\"{'1 ' * 70000}\",Training", f"4,{good.replace('128', '99999999999999999999999', 1)},PublicTest",
            f"5,{good},PrivateTest", f"6,{good},Training"]
    source = tmp_path / "fer2013.csv"
    source.write_text("\n".join(rows) + "\n")
    assert main(["data", "prepare", str(source), "--out", str(tmp_path / "cache")]) == 1
    assert f"{source}: line 3: field 'pixels' holds a non-integer value '²'" in capsys.readouterr().err
    assert main(["data", "prepare", str(source), "--out", str(tmp_path / "cache"), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "skipped 3 bad record(s)" in out
    assert f"{source}: line 3: field 'pixels' holds a non-integer value '²'" in out
    assert f"{source}: line 4: unreadable CSV record (field larger than field limit" in out
    assert f"{source}: line 5: field 'pixels' holds a value outside 0-255" in out
    assert json.loads((tmp_path / "cache" / "manifest.json").read_text())["num_images"] == 3


# 8. Status codes and buffering of bodies over the limit


def test_bodies_over_the_limit_get_413_even_when_chunked(server):
    head = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n")

    def chunked_body():
        yield head
        for _ in range(40):
            yield b"\xff" * 2**20
        yield b"\r\n--b--\r\n"

    response = httpx.post(f"{server}/v1/predict", content=chunked_body(),
                          headers={"content-type": "multipart/form-data; boundary=b"}, timeout=60)
    assert response.status_code == 413 and "over the limit of 10,551,296" in response.json()["detail"]
    # /v1/predict takes one file: a body of two files' size is refused from its declared length alone.
    two_files = httpx.post(f"{server}/v1/predict", files={"file": ("x.jpg", b"\xff" * (20 * 2**20), "image/jpeg")})
    assert two_files.status_code == 413 and "limit of 10,551,296" in two_files.json()["detail"]
    assert httpx.get(f"{server}/healthz").status_code == 200


# 9. Stalled clients


def test_stalled_connections_are_closed_and_the_server_answers_meanwhile(server):
    port = int(server.rsplit(":", 1)[1])
    stalled_headers, stalled_bodies = [], []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        stalled_headers.append(sock)
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\ncontent-type: multipart/form-data; boundary=b\r\n"
                     b"content-length: 1000\r\n\r\n--b\r\n")  # body never finished
        stalled_bodies.append(sock)
    assert httpx.get(f"{server}/healthz", timeout=5).status_code == 200
    for sock, status in [(s, b"408") for s in stalled_headers + stalled_bodies]:
        sock.settimeout(30)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:100]  # then closed: recv gave b""
        sock.close()
    assert httpx.get(f"{server}/healthz", timeout=5).status_code == 200


def test_serve_has_safe_defaults_for_slow_clients():
    args = build_parser().parse_args(["serve"])
    assert (args.header_timeout, args.body_timeout, args.keep_alive_timeout, args.limit_concurrency) == (10.0, 60.0, 5, 512)


# 10. Annotated outputs


def test_annotated_outputs_are_unique_and_relative_to_what_was_passed(astronaut_jpeg, tmp_path, monkeypatch, capsys):
    for folder in ("a", "b", "trip/day1"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.jpg").write_bytes(astronaut_jpeg)
    (tmp_path / "a" / "x.png").write_bytes(astronaut_jpeg)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["predict", "a/x.jpg", "b/x.jpg", "a/x.png", str(tmp_path / "trip"), "--out", str(out), "--quiet"]) == 0
    records = json.loads((out / "predictions.json").read_text())
    annotated = [Path(r["annotated"]).relative_to(out / "annotated").as_posix() for r in records]
    assert annotated == ["x.png", "x-2.png", "x-3.png", "trip/day1/x.png"]
    assert all((out / "annotated" / name).is_file() for name in annotated)
    assert not any(part in str(tmp_path).strip("/").split("/") for part in Path(annotated[-1]).parts[:-2])


# Also: offline API docs, no unpickling advice


def test_api_docs_are_served_from_the_package(server):
    page = httpx.get(f"{server}/docs").text
    assets = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert len(assets) == 3 and all(url.startswith("/docs-assets/") for url in assets)
    assert "://" not in page, "nothing may come from another host: the service must work offline"
    for url in assets:
        assert httpx.get(f"{server}{url}").status_code == 200
    from resdropnet.serving.app import Settings, create_app

    paths = {getattr(route, "path", None) for route in create_app(Settings(docs=False)).routes}
    assert "/docs" not in paths and "/docs-assets" not in paths and "/openapi.json" in paths
    assert build_parser().parse_args(["serve", "--no-docs"]).no_docs


def test_a_checkpoint_holding_objects_is_refused_without_advice_to_unpickle(tmp_path):
    import torch

    from resdropnet.training.checkpoints import CheckpointError, read_checkpoint

    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "payload": threading.Lock}, path)  # a class: needs full unpickling
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(path)
    assert "never unpickles" in str(raised.value) and "weights_only" not in str(raised.value)
