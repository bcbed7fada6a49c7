"""predict's records and their four formats, on this machine: list files, URIs, videos and errors included."""

import csv
import io
import json

import cv2
import pytest
from skimage import data as skimage_data

from resdropnet.cli import main
from resdropnet.labels import EMOTIONS
from resdropnet.predictions import PredictionWriter, record_from_parquet


@pytest.fixture
def folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.jpg"), cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    return photos


def predict(capsys, *args) -> tuple[int, str, str]:
    code = main(["predict", *args, "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_format_holds_the_same_records(folder, tmp_path, capsys):
    code, printed, err = predict(capsys, str(folder))
    assert code == 1 and "broken.png: truncated or corrupt PNG" in err and "1 input(s), 1 face(s), 1 error(s)" in err
    records = json.loads(printed)
    assert [r["file"] for r in records] == [str(folder / "astronaut.jpg"), str(folder / "broken.png")]
    assert records[0]["faces"][0]["emotion"] == "happy" and "error" in records[1]

    assert predict(capsys, str(folder), "--format", "jsonl")[1].splitlines() == [json.dumps(r) for r in records]
    rows = list(csv.DictReader(io.StringIO(predict(capsys, str(folder), "--format", "csv")[1])))
    assert [(r["file"], r["emotion"]) for r in rows] == [(str(folder / "astronaut.jpg"), "happy")]

    pq = pytest.importorskip("pyarrow.parquet")
    assert predict(capsys, str(folder), "--format", "parquet", "--out", str(tmp_path / "out"))[0] == 1
    table = pq.read_table(tmp_path / "out" / "predictions.parquet").to_pylist()
    assert [record_from_parquet(row) for row in table] == records
    assert table[0]["error"] is None and len(table[0]["faces"][0]["landmarks"]) == 5  # centerface, the default
    assert table[1]["width"] is None
    haar = json.loads(predict(capsys, str(folder), "--detector", "haar")[1])
    assert predict(capsys, str(folder), "--detector", "haar", "--format", "parquet", "--out", str(tmp_path / "haar"))[0] == 1
    rows = pq.read_table(tmp_path / "haar" / "predictions.parquet").to_pylist()
    assert [record_from_parquet(row) for row in rows] == haar and rows[0]["faces"][0]["landmarks"] is None
    code, _out, err = predict(capsys, str(folder), "--format", "parquet")
    assert code == 1 and "--format parquet writes a file: give --out" in err


def test_the_json_writer_streams_the_same_text_as_one_dump(tmp_path):
    records = [{"file": "a.jpg", "faces": [{"box": [1, 2, 3, 4], "probabilities": dict.fromkeys(EMOTIONS, 0.1)}]},
               {"file": "b.jpg", "error": "b.jpg: empty file"}]
    for written in (records, []):
        with PredictionWriter("json", tmp_path / "p.json") as writer:
            for record in written:
                writer.write(record)
        assert (tmp_path / "p.json").read_text() == json.dumps(written, indent=2) + "\n"


def test_list_files_uris_and_videos(folder, tmp_path, capsys):
    listing = tmp_path / "inputs.txt"
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (512, 512))
    astronaut = cv2.imread(str(folder / "astronaut.jpg"))
    for _frame in range(6):
        writer.write(astronaut)
    writer.release()
    uri = (folder / "astronaut.jpg").as_uri()
    listing.write_text(f"# comment\n{folder / 'astronaut.jpg'}\n\n{uri}\n{clip}\n{tmp_path / 'gone.jpg'}\n")
    code, printed, err = predict(capsys, "--list", str(listing), "--every", "2")
    records = json.loads(printed)
    assert code == 1 and "gone.jpg: no such file or folder" in err
    assert [r["file"] for r in records] == [str(tmp_path / "gone.jpg"), str(folder / "astronaut.jpg"), uri, str(clip)]
    assert records[1]["faces"] == records[2]["faces"]  # the same file, read through pyarrow's file:// URI
    video = records[3]["video"]
    assert video["frames_analysed"] == 3 and [f["frame"] for f in video["frames"]] == [0, 2, 4]
    assert video["frames"][0]["faces"][0]["track"] == 0 and video["dominant_emotion"] == "happy"
    code, _out, err = predict(capsys)
    assert code == 1 and "nothing to predict: give PATHS, --list FILE or --parquet FILE" in err
