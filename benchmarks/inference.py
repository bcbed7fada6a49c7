"""Inference speed of the shipped model, face detectors compared, and the core install's cold start.

    python benchmarks/inference.py            # writes benchmarks/results/inference.json
    python benchmarks/inference.py --classifier-only   # this CPU's classifier rows alone:
                                              # results/inference_classifier_<capability>.json (another CPU kind)
    python benchmarks/inference.py --side-by-side fast,old/model.int8.onnx   # two classifiers taking turns:
                                              # results/classifier_side_by_side.json

Classifier: faces/s at batch 1 and 64, per shipped model, onnxruntime int8 / fp32 vs torch, 1 and 2 threads.
End to end: median and p95 latency of EmotionRecognizer.predict on a 640x480 photo with one face
(detection, crop, classification; the photo already decoded), per detector and per shipped model.
Detectors: recall and stray boxes on photos composed from PrivateTest faces (FER2013 needed).
Cold start: a fresh interpreter with torch blocked imports, loads and predicts one photo file.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import FER_ZIP, write_result  # noqa: E402

from resdropnet.evaluation.photos import compose_photo, match_faces  # noqa: E402
from resdropnet.faces import DEFAULT_DETECTOR, create_detector  # noqa: E402
from resdropnet.inference import EmotionRecognizer  # noqa: E402
from resdropnet.system import machine_info  # noqa: E402
from resdropnet.weights import SHIPPED_MODELS, shipped_folder  # noqa: E402

DETECTORS = ("haar", "haar-full", "haar-alt2", "centerface")


def test_faces(count: int) -> np.ndarray:
    if FER_ZIP.is_file():
        from resdropnet import data

        return data.load(FER_ZIP).split("test")[0][:count]
    from skimage import data as samples  # the astronaut's face, when FER2013 is absent

    gray = cv2.cvtColor(samples.astronaut(), cv2.COLOR_RGB2GRAY)[60:170, 170:280]
    return np.stack([cv2.resize(gray, (48, 48), interpolation=cv2.INTER_AREA)] * count)


def one_face_photo(faces: np.ndarray) -> np.ndarray:
    """A 640x480 photo holding the first test face that the default detector finds."""
    detector = create_detector("haar")
    for index, face in enumerate(faces):
        photo, _boxes = compose_photo(face[None], width=640, height=480, face_size=160, seed=index)
        if len(detector(photo)) == 1:
            return photo
    raise RuntimeError("the detector found none of the test faces")


def timed_rate(step, items_per_call: int, min_seconds: float = 2.0) -> float:
    step()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < min_seconds:
        step()
        calls += 1
    return calls * items_per_call / (time.perf_counter() - started)


def shipped_models() -> list[str]:
    return [name for name in SHIPPED_MODELS if (shipped_folder(name) / "model.safetensors").is_file()]


def classifier_rows(faces: np.ndarray) -> list[dict]:
    rows = []
    for weights in shipped_models():
        for backend in ("onnx-int8", "onnx", "torch"):
            for threads in (1, 2):
                recognizer = EmotionRecognizer(weights, backend=backend, detector="none", threads=threads, batch_size=64)
                for batch in (1, 64):
                    crops = faces[:batch]
                    rate = timed_rate(lambda: recognizer.classify_faces(crops), batch)
                    rows.append({"weights": weights, "backend": backend, "threads": threads, "batch": batch,
                                 "faces_per_s": rate})
                    print(f"classifier {weights} {backend} threads={threads} batch={batch}: {rate:,.0f} faces/s")
    return rows


def graph_shape(onnx_file: Path) -> list[tuple]:
    """An ONNX graph without its weights: each node's operator with the shapes of the constant tensors it reads."""
    import onnx

    graph = onnx.load(str(onnx_file)).graph
    shapes = {tensor.name: tuple(tensor.dims) for tensor in graph.initializer}
    return [(node.op_type, tuple(shapes.get(name) for name in node.input)) for node in graph.node]


def same_graph(weights: list[str]) -> bool:
    """Whether the classifiers (shipped names, as their int8 files, or .onnx files) run the same operators on tensors
    of the same shapes: then they cost the same and differ only in their weights."""
    from resdropnet.inference.backends import onnx_path_for

    first, *others = [graph_shape(onnx_path_for(w, int8=True) if w in SHIPPED_MODELS else Path(w)) for w in weights]
    return all(shape == first for shape in others)


def side_by_side_rows(faces: np.ndarray, weights: list[str], rounds: int = 5) -> list[dict]:
    """Classifiers (shipped names on their default int8 backend, or .onnx files) timed in turns, round after round,
    so that a machine's drift between runs falls on all of them alike; each row holds the median over rounds."""
    rows = []
    for threads in (1, 2):
        recognizers = {w: EmotionRecognizer(w, detector="none", threads=threads, batch_size=64) for w in weights}
        for batch in (1, 64):
            rates = {w: [] for w in weights}
            for round_ in range(rounds):
                for w in weights if round_ % 2 == 0 else reversed(weights):
                    recognizer = recognizers[w]
                    rates[w].append(timed_rate(lambda: recognizer.classify_faces(faces[:batch]), batch, 1.0))
            for w in weights:
                shown = w if w in SHIPPED_MODELS else f"{Path(w).parent.name}/{Path(w).name}"  # no machine paths
                rows.append({"weights": shown, "backend": recognizers[w].backend.name, "threads": threads, "batch": batch,
                             "faces_per_s": statistics.median(rates[w]), "rounds": rounds, "round_rates": rates[w]})
                print(f"side by side {shown} threads={threads} batch={batch}: {rows[-1]['faces_per_s']:,.0f} faces/s")
    return rows


def end_to_end_rows(photo: np.ndarray, runs: int) -> list[dict]:
    """Every detector with the default model, then each shipped model on its fastest backend with the default detector."""
    setups = [("default", "onnx", detector) for detector in DETECTORS]
    setups += [(weights, "onnx-int8", DEFAULT_DETECTOR) for weights in shipped_models()]
    rows = []
    for weights, backend, detector in setups:
        recognizer = EmotionRecognizer(weights, backend=backend, detector=detector, threads=2)
        recognizer.predict(photo)
        latencies = []
        for _ in range(runs):
            started = time.perf_counter()
            recognizer.predict(photo)
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        row = {"weights": weights, "backend": backend, "detector": detector, "median_ms": statistics.median(latencies),
               "p95_ms": latencies[int(0.95 * (len(latencies) - 1))], "runs": runs}
        rows.append(row)
        print(f"end to end 640x480, {weights} {backend} {detector}: median {row['median_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms")
    return rows


def detector_rows(faces: np.ndarray, photos: int) -> list[dict]:
    rows = []
    for name in DETECTORS:
        detector = create_detector(name)
        found = stray = 0
        times = []
        for index in range(photos):
            photo, boxes = compose_photo(faces[2 * index : 2 * index + 2], seed=index)
            started = time.perf_counter()
            detected = detector(photo)
            times.append((time.perf_counter() - started) * 1000)
            matches = match_faces(boxes, [b.to_list() for b in detected])
            hits = sum(m is not None for m in matches)
            found, stray = found + hits, stray + len(detected) - len(set(m for m in matches if m is not None))
        row = {"detector": name, "faces": 2 * photos, "recall": found / (2 * photos), "stray_boxes": stray,
               "median_ms": statistics.median(times)}
        rows.append(row)
        print(f"detector {name}: recall {row['recall']:.1%}, {stray} stray boxes, median {row['median_ms']:.1f} ms")
    return rows


# Peak memory from VmHWM: ru_maxrss would carry over the parent's peak across fork and exec.
COLD_START = """
import sys, time
started = time.perf_counter()
for name in ("torch", "lightning", "torchmetrics", "kornia"):
    sys.modules[name] = None
from resdropnet.inference import EmotionRecognizer
faces = EmotionRecognizer().predict(sys.argv[1])
assert sys.modules["torch"] is None
seconds = time.perf_counter() - started
peak_kb = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(seconds, peak_kb, len(faces))
"""


def cold_start(photo: np.ndarray, runs: int = 5) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "photo.jpg"
        cv2.imwrite(str(path), photo)
        walls, inside, rss = [], [], []
        for _ in range(runs):
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", COLD_START, str(path)], capture_output=True, text=True, check=True)
            walls.append(time.perf_counter() - started)
            seconds, max_rss_kb, _faces = out.stdout.split()
            inside.append(float(seconds))
            rss.append(int(max_rss_kb) / 1024)
    result = {"process_wall_s_median": statistics.median(walls), "import_load_predict_s_median": statistics.median(inside),
              "max_rss_mb_median": statistics.median(rss), "runs": runs}
    print(f"cold start: {result['process_wall_s_median']:.2f} s whole process, "
          f"{result['import_load_predict_s_median']:.2f} s import+load+predict, {result['max_rss_mb_median']:.0f} MB peak RSS")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=150, help="composed photos for the detector comparison")
    parser.add_argument("--runs", type=int, default=200, help="end-to-end predictions per detector")
    parser.add_argument("--classifier-only", action="store_true",
                        help="classifier faces/s alone, kept per CPU capability beside the full result")
    parser.add_argument("--side-by-side", metavar="W1,W2",
                        help="only time these classifiers in turns (shipped names or .onnx files)")
    parser.add_argument("--rounds", type=int, default=5, help="turns of about a second each classifier takes, with --side-by-side")
    args = parser.parse_args()
    faces = test_faces(max(64, 2 * args.photos))
    if args.side_by_side:
        weights = args.side_by_side.split(",")
        write_result("classifier_side_by_side", {"classifier": side_by_side_rows(faces, weights, args.rounds),
                                                 "same_graph": same_graph(weights)})
        return
    if args.classifier_only:
        capability = machine_info()["cpu_capability"].lower()
        write_result(f"inference_classifier_{capability}", {"classifier": classifier_rows(faces)})
        return
    photo = one_face_photo(faces)
    write_result("inference", {
        "fer2013": FER_ZIP.is_file(),
        "classifier": classifier_rows(faces),
        "end_to_end": end_to_end_rows(photo, args.runs),
        "detectors": detector_rows(faces, args.photos) if FER_ZIP.is_file() else [],
        "cold_start": cold_start(photo),
    })


if __name__ == "__main__":
    main()
