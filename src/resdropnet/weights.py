"""Model weights as safetensors, with the model config in the file's metadata."""

import json
from pathlib import Path

from resdropnet.errors import ResDropNetError

PACKAGE_WEIGHTS = Path(__file__).parent / "weights"
# Models shipped inside the package, each in its own folder: model.safetensors, model.onnx (fp32),
# model.int8.onnx (onnxruntime int8), report.json, MODEL_CARD.md and plots.
SHIPPED_MODELS = ("default", "fast")


def shipped_folder(name: str) -> Path:
    return PACKAGE_WEIGHTS / name


def is_shipped_name(weights) -> bool:
    return str(weights) in SHIPPED_MODELS


DEFAULT_WEIGHTS = shipped_folder("default") / "model.safetensors"


class WeightsError(ResDropNetError, ValueError):
    """A weights file is missing, truncated or not ours; the message names it."""


def resolve_weights(weights: str | Path) -> Path:
    """A shipped model's name ('default', 'fast') or a path, to an existing .safetensors file."""
    if is_shipped_name(weights):
        path = shipped_folder(str(weights)) / "model.safetensors"
        if not path.is_file():
            raise WeightsError(f"{path}: the package ships no {weights!r} weights yet")
        return path
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    return path


# Larger fp32 weights are stored in fp16 (half the bytes): shipped weights must stay under 20 MB, and a lent
# GPU machine returns files of at most 16 MiB. Loading casts them back to the model's fp32.
FP16_ABOVE_BYTES = 16 * 2**20


def stored_state(model) -> dict:
    """The model's tensors as written to disk: on the CPU, floating ones in fp16 where fp32 would be too large."""
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    if sum(t.numel() * t.element_size() for t in state.values()) > FP16_ABOVE_BYTES:
        state = {name: t.half() if t.is_floating_point() else t for name, t in state.items()}
    return state


def save_model(model, path: str | Path, metadata: dict | None = None) -> Path:
    """Writes the model's tensors and its config (plus any metadata) to one safetensors file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"config": json.dumps(model.config.to_dict()), **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    state = stored_state(model)
    staging = path.with_name(f".{path.name}.partial")
    save_file(state, str(staging), metadata=header)
    staging.replace(path)
    return path


def read_metadata(weights: str | Path) -> dict:
    from safetensors import safe_open

    path = resolve_weights(weights)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            raw = handle.metadata() or {}
    except Exception as error:
        raise WeightsError(f"{path}: not a readable safetensors file ({error})") from None
    if "config" not in raw:
        raise WeightsError(f"{path}: no model config in its metadata; not a resdropnet weights file")
    return {key: json.loads(value) for key, value in raw.items()}


def load_model(weights: str | Path = "default"):
    """A ResDropNet in eval mode from a safetensors file or a shipped model's name."""
    from safetensors.torch import load_file

    from resdropnet.models import ResDropNet, ResDropNetConfig

    path = resolve_weights(weights)
    metadata = read_metadata(path)
    config = metadata["config"]
    config = ResDropNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
    model = ResDropNet(config)
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as error:
        raise WeightsError(f"{path}: weights do not fit the model config in its metadata ({error})") from None
    return model.eval()


def load_ensemble(weights: str | Path):
    """One model, or for comma-separated weights an Ensemble averaging their probabilities."""
    from resdropnet.models import Ensemble

    names = str(weights).split(",")
    if len(names) == 1:
        return load_model(weights)
    return Ensemble([load_model(name) for name in names]).eval()
