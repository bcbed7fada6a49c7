"""Checkpoints that are written atomically and checked before a resume."""

import os
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from resdropnet.errors import ResDropNetError


class CheckpointError(ResDropNetError, RuntimeError):
    """A checkpoint is missing, truncated or corrupt; the message names it."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes beside the target and renames, so a kill mid-write leaves the previous file whole."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.partial")
        with open(staging, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)


def read_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint loaded without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        others = sorted(str(p) for p in path.parent.glob("*.ckpt") if p != path)
        hint = f"; other checkpoints there: {', '.join(others)}" if others else ""
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({type(error).__name__}: {error}){hint}") from None
