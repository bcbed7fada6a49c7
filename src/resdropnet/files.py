"""Atomic replacement of files and folders: a kill or power loss leaves either the old one or the new one."""

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flushes a file's or a folder's entry to disk (folders: the names they hold, after a rename)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems cannot fsync a folder; the rename itself is still atomic
        pass
    finally:
        os.close(descriptor)


def staging_path(target: Path) -> Path:
    """Where a new version of target is written before it replaces target: beside it, hidden."""
    return target.with_name(f".{target.name}.partial")


def replace_atomically(staging: Path, target: Path) -> Path:
    """Renames a fully written staging file or folder over target, with its contents and the rename on disk."""
    staging, target = Path(staging), Path(target)
    written = [staging, *(p for p in staging.iterdir() if p.is_file())] if staging.is_dir() else [staging]
    for path in written:
        fsync_path(path)
    os.replace(staging, target)
    fsync_path(target.parent)
    return target
