"""FER2013 readers and the prepared cache, on the real archive and fixtures built from it."""

import csv
import shutil
import zipfile

import cv2
import numpy as np
import pytest

from resdropnet import data
from resdropnet.cli import main
from resdropnet.data.folder_reader import VALIDATION_FRACTION
from resdropnet.labels import EMOTIONS, SPLITS

# Per-class counts from ../shared/data/README.md, in EMOTIONS order (angry ... neutral).
CANONICAL_COUNTS = {
    "train": [3995, 436, 4097, 7215, 4830, 3171, 4965],
    "val": [467, 56, 496, 895, 653, 415, 607],
    "test": [491, 55, 528, 879, 594, 416, 626],
}


def canonical_order(arrays: data.FerArrays):
    """Rows sorted by split, label and pixels, so two readers' outputs compare row by row."""
    keys = [arrays.images.reshape(len(arrays), -1)[:, i] for i in range(48 * 48 - 1, -1, -1)]
    order = np.lexsort([*keys, arrays.labels, arrays.splits])
    return arrays.images[order], arrays.labels[order], arrays.splits[order]


def test_prepare_real_archive_gives_canonical_counts(fer_zip, tmp_path, capsys):
    out = tmp_path / "cache"
    assert main(["data", "prepare", str(fer_zip), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for split, counts in CANONICAL_COUNTS.items():
        assert f"{sum(counts):,}" in printed
    arrays = data.load(out)
    for split, counts in CANONICAL_COUNTS.items():
        assert [arrays.counts()[split][e] for e in EMOTIONS] == counts
    manifest = data.cache.read_manifest(out)
    assert manifest["source_sha256"] == "6b90732a3961bf99e49a683284bd71b211235d091fc806afd8d77034f0697ddf"
    assert arrays.images.shape == (35887, 48, 48) and arrays.images.dtype == np.uint8


def test_csv_and_folder_and_zip_give_identical_arrays(csv_fixture, folder_fixture, tmp_path, real_faces):
    from_csv = data.load(csv_fixture)
    from_folder = data.load(folder_fixture)
    archive = tmp_path / "fixture.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", folder_fixture.parent, folder_fixture.name)
    from_zip = data.load(archive)
    assert len(from_csv) == len(real_faces) == 3 * len(EMOTIONS) * len(SPLITS)
    for a, b in ((from_csv, from_folder), (from_csv, from_zip)):
        for x, y in zip(canonical_order(a), canonical_order(b)):
            np.testing.assert_array_equal(x, y)


def test_cache_round_trip_keeps_arrays(folder_fixture, tmp_path):
    original = data.load(folder_fixture)
    data.prepare(folder_fixture, tmp_path / "cache")
    cached = data.load(tmp_path / "cache")
    for name in ("images", "labels", "splits"):
        np.testing.assert_array_equal(getattr(original, name), getattr(cached, name))


def test_unprefixed_names_carve_a_stratified_validation_split(real_faces, tmp_path, capsys):
    root = tmp_path / "plain"
    for index, (name, payload) in enumerate(real_faces):
        _, top, emotion, _ = name.split("/")
        (root / top / emotion).mkdir(parents=True, exist_ok=True)
        (root / top / emotion / f"img{index:04d}.jpg").write_bytes(payload)
    assert main(["data", "prepare", str(root), "--out", str(tmp_path / "cache")]) == 0
    assert "became the validation split" in capsys.readouterr().out
    arrays = data.load(tmp_path / "cache")
    train_count = sum(1 for n, _ in real_faces if n.split("/")[1] == "train")
    assert arrays.counts()["val"]["total"] == pytest.approx(train_count * VALIDATION_FRACTION, abs=len(EMOTIONS))
    assert arrays.counts()["test"]["total"] == len(real_faces) - train_count
    again = data.load(root)
    np.testing.assert_array_equal(arrays.splits, again.splits)  # deterministic


def test_val_folder_is_the_validation_split(real_faces, tmp_path):
    root = tmp_path / "withval"
    for index, (name, payload) in enumerate(real_faces):
        _, top, emotion, _ = name.split("/")
        top = {"train": "train", "test": "val" if index % 2 else "test"}[top]
        (root / top / emotion).mkdir(parents=True, exist_ok=True)
        (root / top / emotion / f"img{index:04d}.png").write_bytes(cv2.imencode(".png", cv2.imdecode(np.frombuffer(payload, np.uint8), 0))[1].tobytes())
    arrays = data.load(root)
    assert arrays.counts()["val"]["total"] == sum(1 for i, (n, _) in enumerate(real_faces) if n.split("/")[1] == "test" and i % 2)
    assert not any("became the validation split" in note for note in arrays.notes)


# ---------- bad input ----------


def write_rows(path, rows, header=("emotion", "pixels", "Usage")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


GOOD_PIXELS = " ".join(["128"] * 2304)


@pytest.mark.parametrize(
    "row, message",
    [
        (["3", " ".join(["1"] * 2303), "Training"], "2303 values"),
        (["3", GOOD_PIXELS.replace("128", "x", 1), "Training"], "non-integer value 'x'"),
        (["3", GOOD_PIXELS.replace("128", "300", 1), "Training"], "outside 0-255"),
        (["7", GOOD_PIXELS, "Training"], "outside 0-6"),
        (["happy", GOOD_PIXELS, "Training"], "'emotion' is not an integer"),
        (["3", GOOD_PIXELS, "Testing"], "'Usage' is 'Testing'"),
    ],
)
def test_bad_csv_row_names_file_and_line(tmp_path, row, message):
    path = write_rows(tmp_path / "bad.csv", [["0", GOOD_PIXELS, "Training"], row])
    with pytest.raises(data.DataError) as error:
        data.load(path)
    assert str(path) in str(error.value) and "line 3" in str(error.value) and message in str(error.value)


def test_missing_column_is_named(tmp_path):
    path = write_rows(tmp_path / "nocol.csv", [["0", GOOD_PIXELS]], header=("emotion", "pixels"))
    with pytest.raises(data.DataError, match="missing column.*Usage"):
        data.load(path)


def test_empty_sources_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="no images found"):
        data.load(tmp_path / "empty")
    with pytest.raises(data.DataError, match="no usable rows"):
        data.load(write_rows(tmp_path / "header_only.csv", []))
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(data.DataError, match="broken.zip"):
        data.load(tmp_path / "broken.zip")


def test_bad_images_and_folders_are_named(folder_fixture):
    truncated = next((folder_fixture / "train" / "happy").iterdir())
    truncated.write_bytes(truncated.read_bytes()[:40])
    with pytest.raises(data.DataError, match=f"{truncated.name}.*unreadable image"):
        data.load(folder_fixture)
    truncated.unlink()
    big = folder_fixture / "train" / "sad" / "Training_big.png"
    cv2.imwrite(str(big), np.full((64, 64), 90, np.uint8))
    with pytest.raises(data.DataError, match="Training_big.png.*64x64, not 48x48"):
        data.load(folder_fixture)
    assert data.load(folder_fixture, resize=True).counts()["train"]["sad"] == 4
    big.unlink()
    stray = folder_fixture / "train" / "contempt" / "Training_1.jpg"
    stray.parent.mkdir()
    stray.write_bytes(b"")
    with pytest.raises(data.DataError, match="unknown emotion folder 'contempt'"):
        data.load(folder_fixture)


def test_skip_bad_reports_and_failure_leaves_no_partial_cache(tmp_path, capsys):
    rows = [["0", GOOD_PIXELS, "Training"], ["9", GOOD_PIXELS, "Training"], ["1", GOOD_PIXELS, "PublicTest"]]
    path = write_rows(tmp_path / "mixed.csv", rows)
    out = tmp_path / "cache"
    assert main(["data", "prepare", str(path), "--out", str(out)]) == 1
    assert "line 3" in capsys.readouterr().err
    assert not out.exists() and not any(p.name.startswith(".cache") for p in tmp_path.iterdir())
    assert main(["data", "prepare", str(path), "--out", str(out), "--skip-bad"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 bad record" in printed and "line 3" in printed
    assert len(data.load(out)) == 2
    # A failing prepare over an existing cache keeps the old cache whole.
    assert main(["data", "prepare", str(path), "--out", str(out)]) == 1
    assert len(data.load(out)) == 2


def test_prepare_refuses_to_overwrite_a_foreign_folder(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    path = write_rows(tmp_path / "ok.csv", [["0", GOOD_PIXELS, "Training"]])
    with pytest.raises(data.DataError, match="not a resdropnet cache"):
        data.prepare(path, out)
    assert (out / "notes.txt").read_text() == "keep me"


def test_zip_with_corrupt_member_is_named(real_faces, tmp_path):
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as z:
        for name, payload in real_faces[:5]:
            z.writestr(name, payload)
    raw = bytearray(archive.read_bytes())
    offset = raw.find(real_faces[0][1][100:120])
    raw[offset] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match=real_faces[0][0].split("/")[-1]):
        data.load(archive)
