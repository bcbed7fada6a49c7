"""Reads the original competition file fer2013.csv (columns emotion, pixels, Usage)."""

import csv
from pathlib import Path

import numpy as np

from resdropnet.data.dataset import FerArrays
from resdropnet.data.errors import BadRecordPolicy, DataError
from resdropnet.labels import EMOTIONS, IMAGE_SIZE, USAGE_TO_SPLIT

REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")
PIXELS_PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE


def parse_row(row: dict[str, str]) -> tuple[np.ndarray, int, int]:
    """One CSV row as (48x48 uint8 image, label, split id); raises ValueError naming the field."""
    try:
        label = int(row["emotion"])
    except (TypeError, ValueError):
        raise ValueError(f"field 'emotion' is not an integer: {row['emotion']!r}") from None
    if not 0 <= label < len(EMOTIONS):
        raise ValueError(f"field 'emotion' is {label}, outside 0-{len(EMOTIONS) - 1}")
    usage = (row["Usage"] or "").strip()
    if usage not in USAGE_TO_SPLIT:
        raise ValueError(f"field 'Usage' is {usage!r}, not one of {', '.join(USAGE_TO_SPLIT)}")
    tokens = (row["pixels"] or "").split()
    if len(tokens) != PIXELS_PER_IMAGE:
        raise ValueError(f"field 'pixels' has {len(tokens)} values, expected {PIXELS_PER_IMAGE}")
    try:
        values = np.array(tokens, dtype=np.int64)
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise ValueError(f"field 'pixels' holds a non-integer value {bad!r}") from None
    if values.min() < 0 or values.max() > 255:
        raise ValueError("field 'pixels' holds a value outside 0-255")
    return values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE), label, USAGE_TO_SPLIT[usage]


def read_csv(path: Path, skip_bad: bool = False) -> FerArrays:
    policy = BadRecordPolicy(skip_bad)
    images, labels, splits = [], [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected header {','.join(REQUIRED_COLUMNS)}")
        for row in reader:
            try:
                image, label, split = parse_row(row)
            except ValueError as error:
                policy.reject(f"{path}: line {reader.line_num}", str(error))
                continue
            images.append(image)
            labels.append(label)
            splits.append(split)
    if not images:
        raise DataError(f"{path}: no usable rows")
    return FerArrays(
        images=np.stack(images),
        labels=np.array(labels, dtype=np.uint8),
        splits=np.array(splits, dtype=np.uint8),
        skipped=policy.skipped,
    )
