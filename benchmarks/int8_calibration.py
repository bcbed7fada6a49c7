"""How the int8 copy's activation ranges are calibrated, measured: each calibration method and sample size, for each
shipped model, on PublicTest (which chooses) and PrivateTest (reported), without TTA and with flip.

    python benchmarks/int8_calibration.py --models fast,default --methods minmax,percentile --counts 1024

Writes benchmarks/results/int8_calibration.json; the shipped int8 copies are left as they are.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from common import FER_ZIP, write_result  # noqa: E402

from resdropnet.data import loaded  # noqa: E402
from resdropnet.evaluation.report import evaluate_deployed  # noqa: E402
from resdropnet.export import CALIBRATION_METHODS, calibration_faces, quantize_int8  # noqa: E402
from resdropnet.weights import shipped_folder  # noqa: E402


def accuracies(onnx_path: Path, arrays) -> dict:
    """PublicTest ('val') and PrivateTest ('test') accuracy of an ONNX model, without TTA and with flip."""
    return {f"{split}_accuracy{suffix}": evaluate_deployed(str(onnx_path), arrays, split, "onnx", tta=tta)["accuracy"]
            for split in ("val", "test") for tta, suffix in (("none", ""), ("flip", "_flip"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(FER_ZIP))
    parser.add_argument("--models", default="fast,default")
    parser.add_argument("--methods", default=",".join(CALIBRATION_METHODS))
    parser.add_argument("--counts", default="1024", help="comma-separated numbers of Training faces to calibrate on")
    parser.add_argument("--name", default="int8_calibration")
    args = parser.parse_args()
    arrays = loaded(args.data)
    runs = [(model, method, int(count)) for model in args.models.split(",") for method in args.methods.split(",")
            for count in args.counts.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for model, method, count in tqdm(runs, desc="int8 calibrations"):
            int8 = Path(scratch) / f"{model}-{method}-{count}.int8.onnx"
            quantize_int8(shipped_folder(model) / "model.onnx", int8, calibration_faces(arrays, count), method)
            rows.append({"model": model, "method": method, "calibration_faces": count, **accuracies(int8, arrays)})
            print(rows[-1])
    fp32 = {model: accuracies(shipped_folder(model) / "model.onnx", arrays) for model in args.models.split(",")}
    write_result(args.name, {"command": " ".join(["python benchmarks/int8_calibration.py", *sys.argv[1:]]),
                             "fp32": fp32, "int8": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
