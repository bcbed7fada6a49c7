"""Model weights as safetensors, with the model config in the file's metadata."""

import json
from pathlib import Path

from resdropnet.errors import ResDropNetError, first_line
from resdropnet.files import replace_atomically, staging_path

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


# Larger fp32 weights are stored in fp16 (half the bytes): shipped weights must stay under 20 MB and files under
# 16 MiB move easily between machines. Loading casts them back to the model's fp32.
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

    from resdropnet.models.resdropnet import RepConvBN

    if any(isinstance(m, RepConvBN) and m.fused is not None for m in model.modules()):
        raise ValueError("this model is folded for inference and its config asks for the trained layers: save the "
                         "model as trained (load_model(..., for_inference=False))")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"config": json.dumps(model.config.to_dict()), **{k: json.dumps(v) for k, v in (metadata or {}).items()}}
    state = stored_state(model)
    staging = staging_path(path)
    save_file(state, str(staging), metadata=header)
    return replace_atomically(staging, path)


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
    metadata = {}
    for key, value in raw.items():
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            raise WeightsError(f"{path}: metadata field {key!r} is not JSON") from None
    return metadata


# Limits on a config read from a file, checked before any layer is built: the largest registered model
# (resdropnet_m) has 11 M parameters; a file asking for far more is a mistake or an attack on memory.
MAX_PARAMETERS = 50_000_000
MAX_STAGES, MAX_BLOCKS_PER_STAGE, MAX_WIDTH = 8, 32, 4096


def model_config_from(raw, path: Path):
    """A ResDropNetConfig from a weights file's metadata, each field checked; errors name the file and field."""
    from dataclasses import fields

    from resdropnet.labels import EMOTIONS
    from resdropnet.models import ResDropNetConfig

    if not isinstance(raw, dict):
        raise WeightsError(f"{path}: metadata 'config' is a {type(raw).__name__}, not an object of model fields")
    defaults = {f.name: f.default for f in fields(ResDropNetConfig)}
    unknown = sorted(set(raw) - set(defaults))
    if unknown:
        raise WeightsError(f"{path}: unknown model config field(s) {', '.join(map(repr, unknown))}")
    values = {}
    for name, value in raw.items():
        expected = type(defaults[name])
        if expected is tuple:
            if not isinstance(value, list) or not value or not all(_is_int(v) for v in value):
                raise WeightsError(f"{path}: config field {name!r} must be a list of integers, got {_shown(value)}")
            value = tuple(value)
        elif expected is float and (_is_int(value) or isinstance(value, float)):
            value = float(value)
        elif not (isinstance(value, expected) and (expected is not int or _is_int(value))):
            raise WeightsError(f"{path}: config field {name!r} must be {expected.__name__}, got {_shown(value)}")
        values[name] = value
    try:
        config = ResDropNetConfig(**values)
    except ValueError as error:
        raise WeightsError(f"{path}: invalid model config ({error})") from None
    checks = [
        (config.num_classes == len(EMOTIONS), f"num_classes is {config.num_classes}, the models predict {len(EMOTIONS)} emotions"),
        (config.in_channels == 1, f"in_channels is {config.in_channels}, the models read 1-channel faces"),
        (len(config.widths) <= MAX_STAGES, f"{len(config.widths)} stages, more than {MAX_STAGES}"),
        (all(1 <= b <= MAX_BLOCKS_PER_STAGE for b in config.blocks), f"blocks {list(config.blocks)} outside 1-{MAX_BLOCKS_PER_STAGE}"),
        (all(4 <= w <= MAX_WIDTH for w in config.widths), f"widths {list(config.widths)} outside 4-{MAX_WIDTH}"),
    ]
    for ok, why in checks:
        if not ok:
            raise WeightsError(f"{path}: invalid model config ({why})")
    parameters = parameter_count(config)
    if parameters > MAX_PARAMETERS:
        raise WeightsError(f"{path}: its config asks for {parameters:,} parameters, more than the limit of {MAX_PARAMETERS:,}")
    return config


def parameter_count(config) -> int:
    """Parameters of the model a config describes, counted on torch's meta device: no memory is allocated."""
    import torch

    from resdropnet.models import ResDropNet

    with torch.device("meta"):
        return sum(p.numel() for p in ResDropNet(config).parameters())


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def load_model(weights: str | Path = "default", for_inference: bool = True):
    """A ResDropNet in eval mode from a safetensors file or a shipped model's name; the file is checked first.

    for_inference folds training-only branches (config `reparam`) away; False keeps the layers as trained.
    """
    import torch
    from safetensors.torch import load_file

    from resdropnet.models import ResDropNet, reparameterize

    path = resolve_weights(weights)
    config = model_config_from(read_metadata(path)["config"], path)
    model = ResDropNet(config)
    try:
        state = load_file(str(path))
        model.load_state_dict(state)
    except Exception as error:
        raise WeightsError(f"{path}: weights do not fit the model config in its metadata ({first_line(error)})") from None
    bad = next((name for name, tensor in state.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()), None)
    if bad is not None:
        raise WeightsError(f"{path}: tensor {bad!r} holds NaN or infinite values")
    model.eval()
    return reparameterize(model) if for_inference else model



def load_ensemble(weights: str | Path):
    """One model, or for comma-separated weights an Ensemble averaging their probabilities."""
    from resdropnet.models import Ensemble

    names = str(weights).split(",")
    if len(names) == 1:
        return load_model(weights)
    return Ensemble([load_model(name) for name in names]).eval()
