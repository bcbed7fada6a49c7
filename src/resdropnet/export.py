"""Exports weights to ONNX with a dynamic batch, and checks onnxruntime against torch."""

import warnings
from pathlib import Path

import numpy as np

ONNX_OPSET = 17


def export_onnx(weights="default", out: str | Path = "model.onnx", check: bool = True) -> dict:
    """Writes an ONNX model taking float N x 1 x 48 x 48 gray faces in [0, 1] and giving N x 7 logits."""
    import torch

    from resdropnet.weights import load_model

    model = load_model(weights).float()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial")
    example = torch.rand(2, 1, 48, 48)
    with warnings.catch_warnings():  # the TorchScript exporter needs no onnxscript; torch warns it is legacy
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), str(staging), input_names=["faces"], output_names=["logits"],
                          dynamic_axes={"faces": {0: "batch"}, "logits": {0: "batch"}}, opset_version=ONNX_OPSET,
                          dynamo=False)
    staging.replace(out)
    return {"path": str(out), "max_abs_difference": max_difference(model, out) if check else None}


def max_difference(model, onnx_path: str | Path, count: int = 64, seed: int = 0) -> float:
    """Largest |torch - onnxruntime| over the logits of random faces."""
    import torch

    from resdropnet.inference.backends import OnnxBackend

    faces = np.random.default_rng(seed).random((count, 1, 48, 48), dtype=np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(faces)).numpy()
    return float(np.abs(OnnxBackend(onnx_path).logits(faces) - expected).max())
