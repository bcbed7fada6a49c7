"""Property-based tests: malformed fer2013.csv rows are caught, named by line, and skippable."""

import csv

from hypothesis import given, settings
from hypothesis import strategies as st

from resdropnet import data

GOOD = ["128"] * 2304


def corrupt(kind: str, value: int) -> list[str]:
    if kind == "count":
        return ["3", " ".join(["1"] * (value % 2304)), "Training"]
    if kind == "token":
        pixels = list(GOOD)
        pixels[value % 2304] = ["abc", "1.5", "-", "0x10", "NaN"][value % 5]
        return ["3", " ".join(pixels), "Training"]
    if kind == "range":
        pixels = list(GOOD)
        pixels[value % 2304] = str(256 + value)
        return ["3", " ".join(pixels), "Training"]
    if kind == "label":
        return [str(7 + value), " ".join(GOOD), "Training"]
    return ["3", " ".join(GOOD), ["", "training", "Test", "Private"][value % 4]]


rows_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("good"), st.integers(0, 6)),
        st.tuples(st.sampled_from(["count", "token", "range", "label", "usage"]), st.integers(0, 5000)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(rows_strategy)
def test_malformed_rows_are_reported_by_line(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("csv") / "fer2013.csv"
    bad_lines = []
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for line, (kind, value) in enumerate(rows, start=2):
            if kind == "good":
                writer.writerow([str(value), " ".join(GOOD), "PublicTest"])
            else:
                writer.writerow(corrupt(kind, value))
                bad_lines.append(line)
    good_count = len(rows) - len(bad_lines)
    if bad_lines:
        try:
            data.load(path)
            raise AssertionError("a malformed row was accepted")
        except data.DataError as error:
            assert f"line {bad_lines[0]}:" in str(error) and str(path) in str(error)
    if good_count:
        arrays = data.load(path, skip_bad=True)
        assert len(arrays) == good_count
        assert [r.where.rsplit(" ", 1)[1] for r in arrays.skipped] == [str(n) for n in bad_lines]
