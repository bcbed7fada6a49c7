"""Batch inference on Ray against single-process predict, on the same folder of photos.

    python benchmarks/ray_predict.py [--photos 400]     # writes benchmarks/results/ray_predict.json

The photos are 640x480 JPEGs, each with three PrivateTest faces pasted in (FER2013 needed; NASA's astronaut
portrait otherwise). Measured, each on a fresh command line as a user runs it (imports, model loading and, for Ray,
starting a local cluster included): `resdropnet predict DIR --format jsonl`, then the same with `--engine ray
--workers 1` and `--workers 2`. Then, on one running local cluster, predict_dataset alone for 1 and 2 workers
(actors started and models loaded inside the timing, the cluster not). Every run's records are compared with the
single-process ones.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import FER_ZIP, write_result  # noqa: E402

from resdropnet.evaluation.photos import compose_photo  # noqa: E402


def write_photos(folder: Path, count: int) -> str:
    if FER_ZIP.is_file():
        from resdropnet import data

        faces = data.load(FER_ZIP).split("test")[0]
        for index in range(count):
            photo, _boxes = compose_photo(faces[3 * index : 3 * index + 3], face_size=128, seed=index)
            cv2.imwrite(str(folder / f"photo{index:04d}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return "640x480 JPEGs with three FER2013 PrivateTest faces each"
    from skimage import data as skimage_data

    photo = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    for index in range(count):
        cv2.imwrite(str(folder / f"photo{index:04d}.jpg"), np.roll(photo, index, axis=1))
    return "512x512 JPEGs of the astronaut portrait"


def command_line_run(folder: Path, *extra: str) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "resdropnet", "predict", str(folder), "--format", "jsonl", "--quiet",
                          *extra], capture_output=True, text=True, check=True)
    return time.perf_counter() - started, [json.loads(line) for line in run.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=400)
    args = parser.parse_args()
    import ray

    from resdropnet.distributed import predict_dataset

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        what = write_photos(folder, args.photos)
        rows, expected = [], None
        for label, extra in (("single process", ()), ("ray, 1 worker", ("--engine", "ray", "--workers", "1")),
                             ("ray, 2 workers", ("--engine", "ray", "--workers", "2"))):
            seconds, records = command_line_run(folder, *extra)
            expected = expected or records
            rows.append({"run": f"resdropnet predict, {label}", "seconds": round(seconds, 2),
                         "images_per_s": round(args.photos / seconds, 1), "same_records": records == expected})
            print(rows[-1])
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            for workers in (1, 2):
                started = time.perf_counter()
                records = list(predict_dataset([folder], workers=workers))
                seconds = time.perf_counter() - started
                rows.append({"run": f"predict_dataset on a running cluster, {workers} worker(s)",
                             "seconds": round(seconds, 2), "images_per_s": round(args.photos / seconds, 1),
                             "same_records": records == expected})
                print(rows[-1])
        finally:
            ray.shutdown()
    write_result("ray_predict", {"photos": args.photos, "photo_kind": what,
                                 "faces": sum(len(r.get("faces", [])) for r in expected), "runs": rows})


if __name__ == "__main__":
    main()
