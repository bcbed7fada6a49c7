"""Exports weights to ONNX with a dynamic batch, checks onnxruntime against torch, and quantises to int8."""

import warnings
from pathlib import Path

import numpy as np

from resdropnet.files import replace_atomically, staging_path

ONNX_OPSET = 17


def export_onnx(weights="default", out: str | Path = "model.onnx", check: bool = True) -> dict:
    """Writes an ONNX model taking float N x 1 x 48 x 48 gray faces in [0, 1] and giving N x 7 logits.

    Comma-separated weights make one graph of all of them whose softmax is the mean of their probabilities.
    """
    import torch

    from resdropnet.weights import load_ensemble

    model = load_ensemble(weights).float()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(out)
    example = torch.rand(2, 1, 48, 48)
    with warnings.catch_warnings():  # the TorchScript exporter needs no onnxscript; torch warns it is legacy
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), str(staging), input_names=["faces"], output_names=["logits"],
                          dynamic_axes={"faces": {0: "batch"}, "logits": {0: "batch"}}, opset_version=ONNX_OPSET,
                          dynamo=False)
    replace_atomically(staging, out)
    return {"path": str(out), "max_abs_difference": max_difference(model, out) if check else None}


def max_difference(model, onnx_path: str | Path, count: int = 64, seed: int = 0) -> float:
    """Largest |torch - onnxruntime| over the logits of random faces."""
    import torch

    from resdropnet.inference.backends import OnnxBackend

    faces = np.random.default_rng(seed).random((count, 1, 48, 48), dtype=np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(faces)).numpy()
    return float(np.abs(OnnxBackend(onnx_path).logits(faces) - expected).max())


# onnxruntime's names. Its Entropy method is left out: quantize_static cannot set that calibrator's histogram bins,
# and at their defaults (128 bins, 128 quantized bins) its KL search has one candidate, the full range, so it
# returns MinMax's ranges exactly (measured on `fast`: every activation scale identical; docs/experiment-log.md).
CALIBRATION_METHODS = {"minmax": "MinMax", "percentile": "Percentile"}


def quantize_int8(onnx_path: str | Path, out: str | Path, calibration_faces: np.ndarray, method: str = "minmax") -> Path:
    """Static int8 quantisation (QDQ, per-channel weights) calibrated on uint8 N x 48 x 48 faces.

    Calibrate on Training faces: the activation ranges then match the faces the model will see. method: how the
    activation ranges are chosen from them (onnxruntime's MinMax or Percentile calibration).
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from resdropnet.inference.backends import OnnxBackend, to_model_input

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    input_name = OnnxBackend(onnx_path).input_name

    class Faces(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(calibration_faces, max(1, len(calibration_faces) // 128)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {input_name: to_model_input(batch)}

    out = Path(out)
    staging, prepared = staging_path(out), out.with_name(f".{out.name}.prepared")
    try:
        quant_pre_process(str(onnx_path), str(prepared))
        # reduce_range (7-bit weights): x86 CPUs without VNNI multiply u8 x s8 with VPMADDUBSW, which saturates;
        # full-range weights made the shipped models disagree with fp32 on 9-15% of PrivateTest faces on an AVX2
        # machine (fast: 65.2% instead of 68.1%), against 1.2% with reduce_range (docs/experiment-log.md, 2026-11-25).
        quantize_static(str(prepared), str(staging), Faces(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        reduce_range=True, calibrate_method=CalibrationMethod[CALIBRATION_METHODS[method]])
    finally:
        prepared.unlink(missing_ok=True)
    replace_atomically(staging, out)
    return out


def calibration_faces(source, count: int = 1024, seed: int = 0) -> np.ndarray:
    """A fixed random sample of FER2013 Training faces of source (a path or loaded FerArrays)."""
    from resdropnet import data

    return data.take_subset(*data.loaded(source).split("train"), count, seed)[0]
