"""The prepared cache: one folder with images.npy, labels.npy, splits.npy and manifest.json.

It is written into a temporary folder beside the target and renamed into place, so a
failed or interrupted prepare never leaves a partial cache behind.
"""

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from resdropnet.data.dataset import FerArrays
from resdropnet.data.errors import DataError
from resdropnet.files import replace_atomically

CACHE_FORMAT = "resdropnet-fer2013-cache/1"
ARRAY_FILES = ("images", "labels", "splits")


def sha256_of(source: Path) -> str:
    """sha256 of a file, or of a folder's sorted relative paths and contents."""
    digest = hashlib.sha256()
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        if source.is_dir():
            digest.update(str(path.relative_to(source)).encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def is_cache(path: Path) -> bool:
    return (path / "manifest.json").is_file() and (path / "images.npy").is_file()


def write_cache(arrays: FerArrays, out: Path, source: Path, source_sha256: str) -> dict:
    manifest = {
        "format": CACHE_FORMAT,
        "source": str(source),
        "source_sha256": source_sha256,
        "num_images": len(arrays),
        "counts": arrays.counts(),
        "notes": arrays.notes,
        "skipped": [str(record) for record in arrays.skipped],
    }
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name in ARRAY_FILES:
            np.save(staging / f"{name}.npy", getattr(arrays, name))
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def replace_folder(staging: Path, out: Path) -> None:
    """Move staging to out; an existing cache at out is swapped out only once staging is complete."""
    if out.exists() and not is_cache(out) and any(out.iterdir()):
        raise DataError(f"{out}: exists and is not a resdropnet cache; refusing to overwrite it")
    retired = out.with_name(f".{out.name}.old")
    if out.exists():
        shutil.rmtree(retired, ignore_errors=True)
        replace_atomically(out, retired)
    replace_atomically(staging, out)
    shutil.rmtree(retired, ignore_errors=True)


def read_manifest(path: Path) -> dict:
    try:
        return json.loads((path / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"{path / 'manifest.json'}: unreadable cache manifest ({error})") from None


def read_cache(path: Path) -> FerArrays:
    manifest = read_manifest(path)
    if manifest.get("format") != CACHE_FORMAT:
        raise DataError(f"{path / 'manifest.json'}: format {manifest.get('format')!r}, expected {CACHE_FORMAT!r}")
    loaded = {}
    for name in ARRAY_FILES:
        file = path / f"{name}.npy"
        try:
            loaded[name] = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(f"{file}: unreadable cache array ({error})") from None
    try:
        return FerArrays(**loaded, notes=list(manifest.get("notes", [])))
    except ValueError as error:
        raise DataError(f"{path}: inconsistent cache ({error})") from None
