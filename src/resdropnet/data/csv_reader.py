"""Reads the original competition file fer2013.csv (columns emotion, pixels, Usage)."""

import csv
import re
from pathlib import Path

import numpy as np

from resdropnet.data.dataset import FerArrays
from resdropnet.data.errors import BadRecordPolicy, DataError
from resdropnet.labels import EMOTIONS, IMAGE_SIZE, USAGE_TO_SPLIT

REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")
PIXELS_PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE
INTEGER = re.compile(r"-?[0-9]+")


def shown(value) -> str:
    """A field's value for an error message, cut short: a bad field may be megabytes long."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def parse_row(row: dict[str, str]) -> tuple[np.ndarray, int, int]:
    """One CSV row as (48x48 uint8 image, label, split id); raises ValueError naming the field."""
    try:
        label = int(row["emotion"])
    except (TypeError, ValueError):
        raise ValueError(f"field 'emotion' is not an integer: {shown(row['emotion'])}") from None
    if not 0 <= label < len(EMOTIONS):
        raise ValueError(f"field 'emotion' is {shown(label)}, outside 0-{len(EMOTIONS) - 1}")
    usage = (row["Usage"] or "").strip()
    if usage not in USAGE_TO_SPLIT:
        raise ValueError(f"field 'Usage' is {shown(usage)}, not one of {', '.join(USAGE_TO_SPLIT)}")
    tokens = (row["pixels"] or "").split()
    if len(tokens) != PIXELS_PER_IMAGE:
        raise ValueError(f"field 'pixels' has {len(tokens)} values, expected {PIXELS_PER_IMAGE}")
    # Python's int() also takes '²'-like and other non-ASCII digits; a pixel is 0-255 in ASCII, nothing else.
    bad = next((t for t in tokens if not INTEGER.fullmatch(t)), None)
    if bad is not None:
        raise ValueError(f"field 'pixels' holds a non-integer value {shown(bad)}")
    if any(t.startswith("-") or len(t) > 3 for t in tokens):
        raise ValueError("field 'pixels' holds a value outside 0-255")
    values = np.array(tokens, dtype=np.int64)
    if values.max() > 255:
        raise ValueError("field 'pixels' holds a value outside 0-255")
    return values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE), label, USAGE_TO_SPLIT[usage]


class CountedLines:
    """The lines of a file, counting those read: the csv module's own line_num skips lines it could not parse."""

    def __init__(self, handle):
        self.handle, self.count = handle, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        self.count += 1
        return line


def csv_records(reader: csv.DictReader, lines: CountedLines, path: Path, policy: BadRecordPolicy):
    """(line number, row) of each record; a record the csv module cannot read (a field over its size limit, a NUL)
    is rejected by policy, naming its line, and reading goes on with the next line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            policy.reject(f"{path}: line {lines.count}", f"unreadable CSV record ({error})")
            continue
        yield lines.count, row


def read_csv(path: Path, skip_bad: bool = False) -> FerArrays:
    policy = BadRecordPolicy(skip_bad)
    images, labels, splits = [], [], []
    # Bytes that are not UTF-8 become U+FFFD, which the field checks then reject with the row's line number.
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        lines = CountedLines(handle)
        reader = csv.DictReader(lines)
        try:
            fieldnames = reader.fieldnames or []
        except csv.Error as error:
            raise DataError(f"{path}: line 1: unreadable CSV header ({error})") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in fieldnames]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected header {','.join(REQUIRED_COLUMNS)}")
        for line, row in csv_records(reader, lines, path, policy):
            try:
                image, label, split = parse_row(row)
            except ValueError as error:
                policy.reject(f"{path}: line {line}", str(error))
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
