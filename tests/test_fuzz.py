"""Property-based fuzzing: images, CSV rows, weights and ONNX files nobody thought of.

Each input is processed or gets a clear error naming it; never a traceback, a 5xx, or a lost batch. Examples are
bounded and derandomized (the same inputs on every run), so the suite stays short and repeatable.
"""

import csv
import io
import json
import tempfile
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage import data as skimage_data
from test_serving import start_server, stop

from resdropnet.cli import main
from resdropnet.data.csv_reader import read_csv
from resdropnet.data.errors import DataError
from resdropnet.errors import ResDropNetError
from resdropnet.images import ImageError, decode_image
from resdropnet.inference import EmotionRecognizer
from resdropnet.weights import WeightsError


def fuzz_settings(examples: int):
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


def astronaut_rgb(width: int = 96) -> Image.Image:
    photo = Image.fromarray(skimage_data.astronaut())
    return photo.resize((width, width * photo.height // photo.width))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(image, "JPEG", exif=exif.tobytes())


def seed_images() -> dict[str, bytes]:
    """Real encodings of one photo in the formats and modes that arrive in practice, supported or not."""
    photo = astronaut_rgb()
    seeds = {f"{fmt.lower()}": encoded(photo, fmt) for fmt in ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")}
    seeds |= {"progressive.jpg": encoded(photo, "JPEG", progressive=True),
              "cmyk.jpg": encoded(photo.convert("CMYK"), "JPEG"),
              "palette.png": encoded(photo.convert("P"), "PNG"),
              "rgba.png": encoded(photo.convert("RGBA"), "PNG"),
              "gray.png": encoded(photo.convert("L"), "PNG"),
              "sixteen-bit.png": cv2.imencode(".png", (np.asarray(photo.convert("L"), np.uint16) * 257))[1].tobytes()}
    seeds |= {f"orientation{o}.jpg": with_orientation(photo, o) for o in range(1, 9)}
    return seeds


SEEDS = seed_images()
# A photo whose one face the default detector finds: the file that must come through every batch.
GOOD_PHOTO = encoded(astronaut_rgb(512), "JPEG")
ODD_SIDES = st.sampled_from([1, 2, 3, 7, 47, 48, 49, 640, 5000, 100000])


@st.composite
def odd_sized_images(draw) -> bytes:
    height, width = draw(ODD_SIDES), draw(ODD_SIDES)
    if height * width > 2_000_000:
        width = max(1, 2_000_000 // height)
    channels = draw(st.sampled_from([1, 3, 4]))
    fill = draw(st.integers(0, 255))
    image = np.full((height, width, channels) if channels > 1 else (height, width), fill, np.uint8)
    # WebP stops at 16,383 pixels a side and JPEG at 65,535; PNG and BMP take them all.
    suffixes = [".png", ".bmp"] + ([".jpg"] if max(height, width) <= 65535 else []) + ([".webp"] if max(height, width) <= 16383 else [])
    return cv2.imencode(draw(st.sampled_from(suffixes)), image)[1].tobytes()


@st.composite
def mutated_images(draw) -> bytes:
    """A real encoding with bytes flipped, cut, inserted or its header overwritten."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if operation == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif operation == "cut":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        else:
            patch = draw(st.binary(min_size=1, max_size=32))
            start = draw(st.integers(0, 40))
            data[start : start + len(patch)] = patch
    return bytes(data)


MAGIC = st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP", b"BM", b"GIF89a"])
ANY_IMAGE_BYTES = st.one_of(
    st.sampled_from(sorted(SEEDS.values())),
    odd_sized_images(),
    mutated_images(),
    st.builds(lambda magic, rest: magic + rest, MAGIC, st.binary(max_size=512)),
)


@pytest.fixture(scope="module")
def recognizer():
    return EmotionRecognizer()


@fuzz_settings(300)
@given(data=ANY_IMAGE_BYTES)
def test_any_bytes_decode_and_predict_or_get_an_image_error(recognizer, data):
    try:
        image = decode_image(data, "fuzz.bin")
    except ImageError as error:
        assert str(error).startswith("fuzz.bin: ")
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    faces = recognizer.predict(image)
    assert all(abs(sum(face.probabilities.values()) - 1) < 1e-3 for face in faces)


@fuzz_settings(40)
@given(batch=st.lists(ANY_IMAGE_BYTES, min_size=1, max_size=3))
def test_cli_predict_processes_every_file_or_names_it(batch, capsys):
    good = GOOD_PHOTO
    with tempfile.TemporaryDirectory() as folder:
        names = [f"fuzz{i}.img" for i in range(len(batch))]
        for name, data in zip(names, batch):
            (Path(folder) / name).write_bytes(data)
        (Path(folder) / "good.jpg").write_bytes(good)
        code = main(["predict", *(str(Path(folder) / n) for n in [*names, "good.jpg"]), "--quiet"])
        captured = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in captured.err
    records = json.loads(captured.out)  # one for every file: its faces or its error
    errors = [line for line in captured.err.splitlines() if line.startswith("resdropnet: error: ")]
    assert [Path(r["file"]).name for r in records] == [*names, "good.jpg"]
    assert errors == [f"resdropnet: error: {r['error']}" for r in records if "error" in r]
    assert len(records[-1]["faces"]) == 1
    assert all(r["error"].startswith(r["file"] + ": ") for r in records if "error" in r)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process, base, _spool = start_server(tmp_path_factory.mktemp("fuzz"))
    yield base
    stop(process)


@fuzz_settings(100)
@given(data=ANY_IMAGE_BYTES)
def test_the_http_service_answers_every_upload_without_a_5xx(server, data):
    single = httpx.post(f"{server}/v1/predict", files={"file": ("fuzz.bin", data, "application/octet-stream")}, timeout=60)
    assert single.status_code in (200, 413, 415, 422), single.text
    if single.status_code != 200:
        assert single.json()["detail"].startswith("fuzz.bin: ")
    files = [("files", ("fuzz.bin", data, "application/octet-stream")), ("files", ("good.jpg", GOOD_PHOTO, "image/jpeg"))]
    batch = httpx.post(f"{server}/v1/predict/batch", files=files, timeout=60)
    assert batch.status_code in (200, 413), batch.text
    if batch.status_code == 200:
        fuzzed, good = batch.json()["results"]
        assert (fuzzed.get("error") is None) == (single.status_code == 200)
        assert good["error"] is None and len(good["faces"]) == 1


# CSV rows


GOOD_PIXELS = " ".join(["128"] * 48 * 48)
FIELD = st.one_of(st.text(max_size=30), st.sampled_from(["0", "6", "7", "-1", "²", "٣", "Training", "PublicTest", "",
                                                          GOOD_PIXELS, GOOD_PIXELS.replace("128", "256", 1),
                                                          GOOD_PIXELS.replace("128", "²", 1)]))


@st.composite
def csv_lines(draw) -> str:
    """A CSV row written properly (quoted where needed) or a raw line: odd fields, NULs, huge fields."""
    if draw(st.booleans()):
        buffer = io.StringIO()
        csv.writer(buffer).writerow(draw(st.lists(FIELD, min_size=0, max_size=5)))
        return buffer.getvalue()
    raw = draw(st.one_of(st.text(max_size=200), st.just('3,"' + "1 " * 70000 + '",Training'), st.just("\x00,\x00,\x00")))
    return raw.replace("\r", "").replace("\n", " ") + "\n"


@fuzz_settings(200)
@given(lines=st.lists(csv_lines(), max_size=6))
def test_any_csv_row_is_read_or_is_a_row_error_naming_file_and_line(lines):
    good_row = f"3,{GOOD_PIXELS},Training\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fer2013.csv"
        path.write_text("emotion,pixels,Usage\n" + good_row + "".join(lines) + good_row, encoding="utf-8")
        arrays = read_csv(path, skip_bad=True)
        with pytest.raises(DataError, match=f"{path}: line") if arrays.skipped else _nothing():
            read_csv(path, skip_bad=False)
    assert len(arrays.images) >= 2
    assert all(str(record).startswith(f"{path}: line ") for record in arrays.skipped)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# Weights files


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    from resdropnet.models import create_model
    from resdropnet.weights import save_model

    return save_model(create_model("resdropnet_t"), tmp_path_factory.mktemp("weights") / "tiny.safetensors")


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10, 70000) | st.floats(allow_nan=True) | st.text(max_size=8),
                           lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=4),
                           max_leaves=12)
CONFIG_FIELDS = st.sampled_from(["widths", "blocks", "block", "drop_rate", "drop_placement", "drop_mode", "head_dropout",
                                 "drop_path", "num_classes", "in_channels", "colour"])


@st.composite
def mutated_configs(draw, base: dict) -> dict | object:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    config = dict(base)
    for field in draw(st.lists(CONFIG_FIELDS, min_size=1, max_size=3)):
        config[field] = draw(st.one_of(JSON_VALUES, st.lists(st.integers(-2, 9000), max_size=6)))
    return config


def load_or_weights_error(path: Path) -> None:
    from resdropnet.weights import load_model

    try:
        model = load_model(path)
    except WeightsError as error:
        assert str(error).startswith(str(path)), error
        return
    assert model.config.num_classes == 7


@fuzz_settings(150)
@given(data=st.data())
def test_weights_with_any_metadata_load_or_get_a_weights_error(tiny_weights, data):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(tiny_weights), framework="pt") as handle:
        metadata = handle.metadata()
    config = data.draw(mutated_configs(json.loads(metadata["config"])))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.safetensors"
        save_file(load_file(str(tiny_weights)), str(path), metadata={**metadata, "config": json.dumps(config)})
        load_or_weights_error(path)


def mutated_bytes(data, raw: bytes, within: int) -> bytes:
    """raw with one to four bytes among its first `within` overwritten, and maybe cut short."""
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, min(len(raw), within) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del raw[data.draw(st.integers(0, len(raw))):]
    return bytes(raw)


@fuzz_settings(100)
@given(data=st.data())
def test_weights_files_with_mutated_bytes_load_or_get_a_weights_error(tiny_weights, data):
    raw = tiny_weights.read_bytes()
    header_end = 8 + int.from_bytes(raw[:8], "little")
    raw = mutated_bytes(data, raw, within=header_end + 64)  # the header and its neighbourhood
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.safetensors"
        path.write_bytes(raw)
        load_or_weights_error(path)


# Teacher targets files


@fuzz_settings(120)
@given(data=st.data())
def test_teacher_targets_with_any_tensor_or_bytes_load_or_get_a_targets_error(data):
    from safetensors.torch import save_file

    from resdropnet.training.distillation import (TARGETS_FORMAT, TeacherTargetsError, faces_sha256,
                                                  load_teacher_targets)

    faces = np.arange(5 * 48 * 48, dtype=np.uint8).reshape(5, 48, 48)
    rows = data.draw(st.integers(0, 7))
    columns = data.draw(st.integers(0, 9))
    values = data.draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32),
                                min_size=rows * columns, max_size=rows * columns))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float16, torch.float64, torch.int32]))
    tensor = torch.tensor(values, dtype=torch.float64).reshape(rows, columns).to(dtype) if dtype.is_floating_point \
        else torch.zeros(rows, columns, dtype=dtype)
    name = data.draw(st.sampled_from(["log_probs", "logits"]))
    sha = data.draw(st.sampled_from([faces_sha256(faces), faces_sha256(faces[:4]), ""]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.targets.safetensors"
        save_file({name: tensor}, str(path), metadata={"format": TARGETS_FORMAT, "faces_sha256": sha, "teacher": "t"})
        if data.draw(st.booleans()):
            path.write_bytes(mutated_bytes(data, path.read_bytes(), within=len(path.read_bytes())))
        try:
            log_probs = load_teacher_targets(path, faces)
        except TeacherTargetsError as error:
            assert str(path) in str(error)
            return
        assert log_probs.shape == (5, 7) and torch.isfinite(log_probs).all()
        torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(5), atol=0.01, rtol=0)


# ONNX files


@pytest.fixture(scope="module")
def tiny_onnx(tiny_weights) -> Path:
    from resdropnet.export import export_onnx

    return Path(export_onnx(tiny_weights, tiny_weights.with_suffix(".onnx"), check=False)["path"])


@fuzz_settings(100)
@given(data=st.data())
def test_onnx_files_with_mutated_bytes_load_or_get_a_weights_error(tiny_onnx, data):
    from resdropnet.inference.backends import OnnxBackend

    raw = mutated_bytes(data, tiny_onnx.read_bytes(), within=len(tiny_onnx.read_bytes()))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.onnx"
        path.write_bytes(raw)
        try:
            backend = OnnxBackend(path)
        except ResDropNetError as error:
            assert str(error).startswith(str(path)), error
            return
        faces = np.zeros((3, 1, 48, 48), np.float32)
        try:
            assert backend.logits(faces).shape == (3, 7)
        except WeightsError as error:
            assert str(error).startswith(str(path))
