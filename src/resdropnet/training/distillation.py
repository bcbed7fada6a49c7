"""The teacher's targets for distillation: computed from weights, or read from a file computed once before.

A targets file (`resdropnet data teacher-targets`) holds the teacher's log-probabilities for every training face and
the sha256 of those faces, so one teacher pass serves any number of students and the file travels without the
teacher's weights.
"""

import hashlib
from pathlib import Path

import numpy as np
import torch

from resdropnet.errors import ResDropNetError
from resdropnet.files import replace_atomically, staging_path

TARGETS_FORMAT = "resdropnet-teacher-targets"
NUM_CLASSES = 7


class TeacherTargetsError(ResDropNetError, ValueError):
    """A teacher targets file is unreadable, malformed or made for other training faces; the message names it."""


def teacher_log_probs(weights: str, images: np.ndarray) -> torch.Tensor:
    """The teacher's flip-averaged log-probabilities for every training face, computed once before training.

    weights: one model, or comma-separated models whose probabilities are averaged (an ensemble teacher).
    Measured: this costs one teacher pass, where a teacher run on every augmented batch costs one per epoch.
    """
    from resdropnet.evaluation.tta import predict_probabilities
    from resdropnet.system import bf16_where_native
    from resdropnet.weights import load_ensemble

    # On a GPU where there is one: one CPU thread per process (several runs on one GPU) would take minutes.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16_where_native(device)):
        probs = predict_probabilities(load_ensemble(weights).to(device), images, tta="flip", progress="teacher pass")
    return probs.float().clamp_min(1e-8).log()


def faces_sha256(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes()).hexdigest()


def teacher_sha256(teacher: str) -> str:
    """One sha256 over the teacher's weights files, in order: a new `default` is a different teacher."""
    from resdropnet.data.cache import sha256_of
    from resdropnet.weights import resolve_weights

    return hashlib.sha256("".join(sha256_of(resolve_weights(name)) for name in teacher.split(",")).encode()).hexdigest()


def save_teacher_targets(path: str | Path, log_probs: torch.Tensor, images: np.ndarray, teacher: str) -> Path:
    """Writes the targets with the faces' sha256 and the teacher they came from (run names, not machine paths)."""
    from safetensors.torch import save_file

    from resdropnet.model_card import teacher_source

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": TARGETS_FORMAT, "faces_sha256": faces_sha256(images), "teacher": teacher_source(teacher),
                "teacher_sha256": teacher_sha256(teacher)}
    staging = staging_path(path)
    save_file({"log_probs": log_probs.float().contiguous().cpu()}, str(staging), metadata=metadata)
    return replace_atomically(staging, path)


def read_targets_metadata(path: str | Path) -> dict | None:
    """The metadata of a teacher targets file; None for any other file (model weights, say)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except Exception:
        return None
    return metadata if metadata.get("format") == TARGETS_FORMAT else None


def load_teacher_targets(path: str | Path, images: np.ndarray) -> torch.Tensor:
    """The targets in path, checked to be finite log-probabilities of exactly these training faces."""
    from safetensors import safe_open

    metadata = read_targets_metadata(path)
    if metadata is None:
        raise TeacherTargetsError(f"{path}: not a teacher targets file")
    if metadata.get("faces_sha256") != faces_sha256(images):
        raise TeacherTargetsError(f"{path}: made for other training faces (their sha256 differs): same data and "
                                  "--subset as when it was computed?")
    try:
        with safe_open(str(path), framework="pt") as handle:
            log_probs = handle.get_tensor("log_probs") if "log_probs" in handle.keys() else None
    except Exception as error:
        raise TeacherTargetsError(f"{path}: its tensors cannot be read ({error})") from None
    if log_probs is None:
        raise TeacherTargetsError(f"{path}: no 'log_probs' tensor")
    if tuple(log_probs.shape) != (len(images), NUM_CLASSES):
        raise TeacherTargetsError(f"{path}: log_probs has shape {list(log_probs.shape)}, "
                                  f"expected [{len(images)}, {NUM_CLASSES}]")
    log_probs = log_probs.float()
    if not torch.isfinite(log_probs).all() or (log_probs > 1e-4).any():
        raise TeacherTargetsError(f"{path}: log_probs holds values that are not log-probabilities")
    if not torch.allclose(log_probs.exp().sum(1), torch.ones(len(images)), atol=1e-2):
        raise TeacherTargetsError(f"{path}: log_probs rows do not sum to one probability")
    return log_probs


def training_targets(teacher: str, images: np.ndarray, cache: Path | None = None) -> tuple[torch.Tensor, dict]:
    """The teacher's log-probabilities for the training faces, and what they came from (for the report).

    cache: where a run keeps its teacher's targets, so that resuming it skips the teacher pass (minutes on a CPU,
    more for an ensemble); used only while the teacher's weights and the faces are those it was made from.
    """
    metadata = read_targets_metadata(teacher) if "," not in teacher and Path(teacher).is_file() else None
    if metadata is not None:
        return load_teacher_targets(teacher, images), {"file": Path(teacher).name, "teacher": metadata["teacher"]}
    if cache is not None and (kept := cached_targets(cache, teacher, images)) is not None:
        return kept, {}
    log_probs = teacher_log_probs(teacher, images)
    if cache is not None:
        save_teacher_targets(cache, log_probs, images, teacher)
    return log_probs, {}


def cached_targets(cache: Path, teacher: str, images: np.ndarray) -> torch.Tensor | None:
    """The run's kept targets if this teacher made them for these faces; None where the teacher must run again."""
    metadata = read_targets_metadata(cache) if cache.is_file() else None
    if metadata is None or metadata.get("teacher_sha256") != teacher_sha256(teacher):
        return None
    try:
        return load_teacher_targets(cache, images)
    except TeacherTargetsError:  # other faces (another --subset), or a damaged file: the teacher runs again
        return None
