"""predict on a real Ray cluster on loopback (2 CPUs): every record equals the single-process one, a worker killed
mid-run loses and repeats nothing, and list files, Parquet columns of URIs and Ray Datasets all work as sources."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'resdropnet[ray]'")
pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from resdropnet.cli.inference import local_records  # noqa: E402
from resdropnet.distributed import SourceError, predict_dataset, read_parquet_paths  # noqa: E402
from resdropnet.evaluation.photos import compose_photo  # noqa: E402
from resdropnet.inference import EmotionRecognizer  # noqa: E402
from resdropnet.predictions import record_from_parquet  # noqa: E402

WORKER_TITLE = b"ray::MapWorker(MapBatches(RecognizerWorker))"
pytestmark = pytest.mark.xdist_group("ray")  # one cluster at a time: a test kills its worker processes by name


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local Ray cluster of 2 CPUs; its address, for commands that join it."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(real_faces, tmp_path_factory) -> list[Path]:
    """A folder of real photos (NASA's astronaut portrait, FER2013 faces alone and pasted into group photos, two
    broken files) and a short video of one of the group photos."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    cv2.imwrite(str(folder / "astronaut.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    (folder / "fer").mkdir()
    for index, (_name, jpeg) in enumerate(real_faces[::4]):
        (folder / "fer" / f"{index:02d}.jpg").write_bytes(jpeg)
    faces = np.stack([cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE) for _n, jpeg in real_faces])
    (folder / "group").mkdir()
    photos = [compose_photo(faces[3 * i : 3 * i + 3], face_size=128, seed=i)[0] for i in range(6)]
    for index, photo in enumerate(photos):
        cv2.imwrite(str(folder / "group" / f"group{index}.jpg"), photo)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (folder / "notes.png").write_bytes(b"plain text, not a PNG")
    clip = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for shift in range(12):
        writer.write(np.roll(photos[0], 4 * shift, axis=1))
    writer.release()
    return [folder, clip]


@pytest.fixture(scope="module")
def single_process(inputs) -> list[dict]:
    """What `resdropnet predict FOLDER CLIP --format json` writes, from the same code path, in this process."""
    return list(local_records(EmotionRecognizer(), inputs, 1, None, False, []))


def test_ray_records_equal_the_single_process_ones_row_for_row(cluster, inputs, single_process):
    records = list(predict_dataset(inputs, workers=2, batch_size=4))
    assert records == single_process
    assert sum(len(r.get("faces", [])) for r in records) >= 10  # the astronaut and most pasted faces are found
    assert [r["file"] for r in records if "error" in r] == [str(inputs[0] / "broken.jpg"), str(inputs[0] / "notes.png")]
    assert records[-1]["file"] == str(inputs[1]) and records[-1]["video"]["frames_analysed"] == 12


def test_the_cli_joins_a_running_cluster_and_writes_jsonl_and_parquet(cluster, inputs, single_process, tmp_path):
    listing = tmp_path / "inputs.txt"
    listing.write_text("# one path a line\n" + "\n".join(r["file"] for r in single_process) + "\n\n")
    for fmt in ("jsonl", "parquet"):
        run = subprocess.run([sys.executable, "-m", "resdropnet", "predict", "--list", str(listing), "--engine", "ray",
                              "--address", cluster, "--workers", "2", "--format", fmt, "--out", str(tmp_path / fmt),
                              "--quiet"], capture_output=True, text=True, timeout=600)
        assert run.returncode == 1, run.stderr[-3000:]  # the two broken files, each named on stderr
        assert "2 error(s)" in run.stderr and "broken.jpg: truncated or corrupt JPEG header" in run.stderr
    lines = (tmp_path / "jsonl" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == single_process
    rows = pq.read_table(tmp_path / "parquet" / "predictions.parquet").to_pylist()
    assert [record_from_parquet(row) for row in rows] == single_process


def test_uris_in_a_parquet_column_and_a_ray_dataset(cluster, inputs, single_process, tmp_path):
    uris = [Path(r["file"]).as_uri() for r in single_process]
    pq.write_table(pa.table({"uri": uris}), tmp_path / "inputs.parquet")
    records = list(predict_dataset(read_parquet_paths(tmp_path / "inputs.parquet", "uri"), workers=2))
    assert [r["file"] for r in records] == uris
    for record, expected in zip(records, single_process):
        assert record.get("faces") == expected.get("faces") and record.get("video") == expected.get("video")
        assert record.get("error", "").replace(record["file"], "FILE") == expected.get("error", "").replace(
            expected["file"], "FILE")
    dataset = ray.data.read_parquet(str(tmp_path / "inputs.parquet"))
    assert list(predict_dataset(dataset, column="uri", workers=2)) == records
    with pytest.raises(SourceError, match="inputs.parquet: no column 'path' \\(it has uri\\)"):
        read_parquet_paths(tmp_path / "inputs.parquet")


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(cluster, inputs, single_process):
    photos = [r for r in single_process if "video" not in r]
    records, killed = [], None
    for record in predict_dataset([r["file"] for r in photos] * 6, workers=2, batch_size=2):
        records.append(record)
        if killed is None:  # the first records are back: the workers are busy with the rest
            killed = kill_a_worker()
    assert killed is not None, "no worker process was found to kill"
    assert records == photos * 6


def kill_a_worker() -> int | None:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(WORKER_TITLE):
            os.kill(int(pid), signal.SIGKILL)
            return int(pid)
    return None
