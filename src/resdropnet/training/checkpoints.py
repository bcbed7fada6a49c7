"""Checkpoints that are written atomically and checked before a resume."""

import pickle
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from resdropnet.errors import ResDropNetError, first_line
from resdropnet.files import replace_atomically, staging_path


class CheckpointError(ResDropNetError, RuntimeError):
    """A checkpoint is missing, truncated or corrupt; the message names it."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes beside the target and renames, so a kill mid-write leaves the previous file whole."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = staging_path(path)
        with open(staging, "wb") as handle:
            torch.save(checkpoint, handle)
        replace_atomically(staging, path)


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
        raise CheckpointError(f"{path}: {why_unreadable(error)}{hint}") from None


def why_unreadable(error: Exception) -> str:
    """torch's reason, except its advice to load with weights_only=False: resdropnet never unpickles objects."""
    if isinstance(error, pickle.UnpicklingError) or "weights_only" in str(error):
        return "holds objects other than tensors and plain values, which resdropnet never unpickles"
    return f"truncated or corrupt checkpoint ({type(error).__name__}: {first_line(error)})"
