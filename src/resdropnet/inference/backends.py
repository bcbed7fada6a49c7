"""Classifiers of 48x48 uint8 faces: torch (needs the `train` extra) or onnxruntime (the core install)."""

from pathlib import Path

import numpy as np

from resdropnet.errors import first_line
from resdropnet.faces import FACE_SIZE
from resdropnet.labels import EMOTIONS
from resdropnet.system import onnx_session_options
from resdropnet.weights import WeightsError, is_shipped_name, resolve_weights, shipped_folder

# onnx-int8: the int8-quantised ONNX model (static, per channel), several times faster on CPUs with VNNI.
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
TTA_MODES = ("none", "flip")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def to_model_input(faces: np.ndarray) -> np.ndarray:
    """uint8 N x 48 x 48 to float32 N x 1 x 48 x 48 in [0, 1], the models' input."""
    return (np.asarray(faces, np.float32) / 255.0)[:, None]


class OnnxBackend:
    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), onnx_session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as error:
            raise WeightsError(f"{path}: not a loadable ONNX model ({first_line(error)})") from None
        self.path = Path(path)
        self.input_name = check_onnx_signature(self.session, self.path)
        self.name = "onnx-int8" if self.path.name.endswith(".int8.onnx") else "onnx"
        self.logits(np.zeros((1, 1, FACE_SIZE, FACE_SIZE), np.float32))  # shapes the signature left open

    def logits(self, batch: np.ndarray) -> np.ndarray:
        try:
            (logits, *_rest) = self.session.run(None, {self.input_name: batch})
        except Exception as error:
            raise WeightsError(f"{self.path}: inference failed ({first_line(error)})") from None
        if np.shape(logits) != (len(batch), len(EMOTIONS)):
            raise WeightsError(f"{self.path}: returned an output of shape {list(np.shape(logits))} for "
                               f"{len(batch)} face(s); a resdropnet model returns N x {len(EMOTIONS)} logits")
        return logits


def check_onnx_signature(session, path: Path) -> str:
    """The name of the model's one input, after checking it takes N x 1 x 48 x 48 floats and gives N x 7 outputs.

    Dimensions the file leaves symbolic are accepted here and checked on the first run.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    expected_input = [None, 1, FACE_SIZE, FACE_SIZE]
    if len(inputs) != 1 or inputs[0].type != "tensor(float)" or not _shape_fits(inputs[0].shape, expected_input):
        found = ", ".join(f"{i.name} {i.type} {list(i.shape)}" for i in inputs)
        raise WeightsError(f"{path}: its inputs are [{found}]; a resdropnet model takes one float tensor "
                           f"N x 1 x {FACE_SIZE} x {FACE_SIZE}")
    if not outputs or not _shape_fits(outputs[0].shape, [None, len(EMOTIONS)]):
        found = ", ".join(f"{o.name} {list(o.shape)}" for o in outputs)
        raise WeightsError(f"{path}: its outputs are [{found}]; a resdropnet model returns N x {len(EMOTIONS)} logits")
    return inputs[0].name


def _shape_fits(shape, expected: list) -> bool:
    """A declared ONNX shape against the expected one; None and symbolic (str) dimensions match anything."""
    if shape is None:
        return True
    return len(shape) == len(expected) and all(
        want is None or not isinstance(have, int) or have == want for have, want in zip(shape, expected))



class TorchBackend:
    name = "torch"

    def __init__(self, weights: str | Path, threads: int = 0):
        import torch

        from resdropnet.weights import load_model

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model = load_model(weights)
        self.path = resolve_weights(weights)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(batch)).float().numpy()


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_path_for(weights: str | Path, int8: bool = False) -> Path:
    """The ONNX file that goes with weights: in a shipped model's folder, or beside a .safetensors file."""
    suffix = ".int8.onnx" if int8 else ".onnx"
    if is_shipped_name(weights):
        path = shipped_folder(str(weights)) / f"model{suffix}"
    elif str(weights).endswith(".int8.onnx") or (str(weights).endswith(".onnx") and not int8):
        path = Path(weights)
    else:
        path = Path(weights).with_suffix(suffix)  # model.safetensors or model.onnx -> model.int8.onnx
    if not path.is_file():
        how = " --int8" if int8 else ""
        raise WeightsError(f"{path}: no ONNX model; make one with `resdropnet export --weights {weights}{how} --out {path}`")
    return path


def automatic_backend(weights) -> str:
    """int8 ONNX for shipped models (measured: the same accuracy within 0.2 points, 3x faster than fp32),
    onnxruntime for .onnx files, torch for other weights."""
    if not onnxruntime_available():
        return "torch"
    if is_shipped_name(weights) and (shipped_folder(str(weights)) / "model.int8.onnx").is_file():
        return "onnx-int8"
    return "onnx" if is_shipped_name(weights) or str(weights).endswith(".onnx") else "torch"


def create_backend(weights: str | Path = "default", backend: str = "auto", threads: int = 0):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if str(weights).endswith(".onnx") and backend == "torch":
        raise WeightsError(f"{weights}: an ONNX file runs on backend='onnx' only")
    if backend == "auto":
        backend = automatic_backend(weights)
    if backend in ("onnx", "onnx-int8"):
        return OnnxBackend(onnx_path_for(weights, int8=backend == "onnx-int8"), threads)
    try:
        return TorchBackend(weights, threads)
    except ImportError:
        raise WeightsError("the torch backend needs the train extra: pip install 'resdropnet[train]'") from None
