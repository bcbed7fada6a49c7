"""FER2013 in every form users hold it: fer2013.csv, the image-folder release (folder or
.zip), and the prepared cache that training loads in well under a second."""

from pathlib import Path

from resdropnet.data.cache import is_cache, read_cache, sha256_of, write_cache
from resdropnet.data.csv_reader import read_csv
from resdropnet.data.dataset import FerArrays, counts_table, take_subset
from resdropnet.data.errors import BadRecord, DataError
from resdropnet.data.folder_reader import read_image_folder

__all__ = ["BadRecord", "DataError", "FerArrays", "counts_table", "load", "loaded", "prepare", "take_subset"]


def load(source: str | Path, skip_bad: bool = False, resize: bool = False) -> FerArrays:
    """FER2013 from a prepared cache, a fer2013.csv, an image folder or its .zip."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if source.is_dir() and is_cache(source):
        return read_cache(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return read_csv(source, skip_bad=skip_bad)
    if source.is_dir() or source.suffix.lower() == ".zip":
        return read_image_folder(source, skip_bad=skip_bad, resize=resize)
    raise DataError(f"{source}: not a fer2013 .csv, an image folder, a .zip of one, or a prepared cache")


def loaded(source: str | Path | FerArrays) -> FerArrays:
    """source as load reads it, or as it is where it is loaded already (one load for several passes over it)."""
    return source if isinstance(source, FerArrays) else load(source)


def prepare(source: str | Path, out: str | Path, skip_bad: bool = False, resize: bool = False) -> dict:
    """Read any source and write the compact cache at out; returns its manifest."""
    source = Path(source)
    arrays = load(source, skip_bad=skip_bad, resize=resize)
    return write_cache(arrays, Path(out), source, sha256_of(source))
