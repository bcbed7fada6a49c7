"""Reads the image-folder release of FER2013, from a folder or straight from its .zip.

Layout: <root>/{train,test,val,validation}/<emotion>/<file>. The split comes from the
file-name prefix (Training_, PublicTest_, PrivateTest_) where there is one, else from
the folder.
"""

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from resdropnet.data.dataset import FerArrays
from resdropnet.data.errors import BadRecordPolicy, DataError
from resdropnet.labels import EMOTIONS, IMAGE_SIZE, SPLITS, USAGE_TO_SPLIT

SPLIT_FOLDERS = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}
EMOTION_FOLDERS = {name: i for i, name in enumerate(EMOTIONS)}
VALIDATION_FRACTION = 0.10
CARVE_SEED = 2013


@dataclass(frozen=True)
class ImageEntry:
    path: str  # shown in messages
    label: int
    split: int
    split_from_prefix: bool
    read_bytes: Callable[[], bytes]


def split_from_name(file_name: str) -> int | None:
    for usage, split in USAGE_TO_SPLIT.items():
        if file_name.startswith(usage + "_"):
            return split
    return None


def classify_entry(display: str, parts: tuple[str, ...], policy: BadRecordPolicy) -> tuple[int, int, bool] | None:
    """(label, split, split_from_prefix) of one file, or None where it lies outside the layout."""
    if len(parts) < 3 or parts[-3].lower() not in SPLIT_FOLDERS or parts[-1].startswith("."):
        return None
    emotion = parts[-2].lower()
    if emotion not in EMOTION_FOLDERS:
        policy.reject(display, f"unknown emotion folder {parts[-2]!r}; expected one of {', '.join(EMOTIONS)}")
        return None
    prefix_split = split_from_name(parts[-1])
    if prefix_split is not None:
        return EMOTION_FOLDERS[emotion], prefix_split, True
    return EMOTION_FOLDERS[emotion], SPLIT_FOLDERS[parts[-3].lower()], False


def iter_zip_members(archive: zipfile.ZipFile, zip_path: Path) -> Iterator[tuple[str, tuple[str, ...], Callable[[], bytes]]]:
    for info in archive.infolist():
        if info.is_dir() or info.filename.startswith("__MACOSX/"):
            continue
        parts = PurePosixPath(info.filename).parts
        yield f"{zip_path}:{info.filename}", parts, (lambda name=info.filename: archive.read(name))


def iter_folder_files(root: Path) -> Iterator[tuple[str, tuple[str, ...], Callable[[], bytes]]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield str(path), path.relative_to(root).parts, path.read_bytes


def decode_face(data: bytes, where: str, resize: bool) -> np.ndarray:
    """A 48x48 uint8 grayscale face; raises ValueError saying what is wrong."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
    if image is None:
        raise ValueError("unreadable image (empty, truncated or not an image)")
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        if not resize:
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, not {IMAGE_SIZE}x{IMAGE_SIZE} (use --resize)")
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return image


def carve_validation(labels: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Indices of a deterministic, stratified 10% of the candidate rows."""
    rng = np.random.default_rng(CARVE_SEED)
    chosen = []
    for label in range(len(EMOTIONS)):
        rows = candidates[labels[candidates] == label]
        count = int(round(len(rows) * VALIDATION_FRACTION))
        chosen.append(rng.permutation(rows)[:count])
    return np.sort(np.concatenate(chosen))


def read_entries(members, policy: BadRecordPolicy, resize: bool, source: Path) -> FerArrays:
    entries = []
    for display, parts, read_bytes in members:
        kind = classify_entry(display, parts, policy)
        if kind is not None:
            entries.append(ImageEntry(display, *kind, read_bytes))
    if not entries:
        raise DataError(f"{source}: no images found; expected <root>/train|test/<emotion>/<image> with emotions {', '.join(EMOTIONS)}")
    entries.sort(key=lambda e: (e.split, e.label, e.path))
    images, kept = [], []
    for entry in entries:
        try:
            images.append(decode_face(entry.read_bytes(), entry.path, resize))
            kept.append(entry)
        except (ValueError, OSError, zipfile.BadZipFile) as error:
            policy.reject(entry.path, str(error))
    if not kept:
        raise DataError(f"{source}: none of its {len(entries)} images could be read")
    labels = np.array([e.label for e in kept], dtype=np.uint8)
    splits = np.array([e.split for e in kept], dtype=np.uint8)
    arrays = FerArrays(np.stack(images), labels, splits, skipped=policy.skipped)
    unprefixed_train = np.array([i for i, e in enumerate(kept) if e.split == 0 and not e.split_from_prefix], dtype=np.int64)
    if not (splits == SPLITS.index("val")).any() and len(unprefixed_train):
        arrays.splits[carve_validation(labels, unprefixed_train)] = SPLITS.index("val")
        arrays.notes.append(
            f"no validation folder and no Training_/PublicTest_/PrivateTest_ name prefixes: "
            f"a deterministic stratified {VALIDATION_FRACTION:.0%} of train/ (seed {CARVE_SEED}) became the validation split"
        )
    if not (arrays.splits == SPLITS.index("test")).any():
        arrays.notes.append("no test split found (no test/ folder and no PrivateTest_ names)")
    return arrays


def read_image_folder(source: Path, skip_bad: bool = False, resize: bool = False) -> FerArrays:
    policy = BadRecordPolicy(skip_bad)
    if source.is_dir():
        return read_entries(iter_folder_files(source), policy, resize, source)
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile as error:
        raise DataError(f"{source}: not a readable zip archive ({error})") from None
    with archive:
        return read_entries(iter_zip_members(archive, source), policy, resize, source)
