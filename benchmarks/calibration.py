"""Calibration of the shipped models as they run (int8 onnxruntime, no TTA), before and after temperature scaling.

    python benchmarks/calibration.py       # writes benchmarks/results/calibration.json (FER2013 needed)

The temperature is fit on PublicTest (negative log-likelihood) and applied to PrivateTest and to the labelled
faces of the real-photo benchmark, cropped at their hand-drawn boxes: expected calibration error (15 bins) and
negative log-likelihood before and after. Accuracy does not change: dividing logits keeps their order.
"""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import FER_ZIP, write_result  # noqa: E402

from resdropnet import data  # noqa: E402
from resdropnet.evaluation.calibration import fit_temperature, negative_log_likelihood  # noqa: E402
from resdropnet.evaluation.metrics import classification_metrics  # noqa: E402
from resdropnet.inference import EmotionRecognizer  # noqa: E402
from resdropnet.inference.backends import to_model_input  # noqa: E402
from resdropnet.inference.recognizer import as_box  # noqa: E402
from resdropnet.labels import EMOTIONS  # noqa: E402

REAL_PHOTOS = Path(__file__).parent / "realphotos"


def logits_of(recognizer: EmotionRecognizer, crops) -> torch.Tensor:
    return torch.cat([torch.from_numpy(recognizer.backend.logits(to_model_input(crops[i : i + 256])))
                      for i in range(0, len(crops), 256)])


def real_photo_faces(recognizer: EmotionRecognizer):
    """The labelled real-photo faces, cropped at their hand-drawn boxes as predict(image, boxes=...) crops them, their
    labels and their names ("photo.jpg #k": the k-th face of the photo's truth)."""
    truth = json.loads((REAL_PHOTOS / "truth.json").read_text())["photos"]
    crops, labels, names = [], [], []
    for name, faces in truth.items():
        labelled = [(k, face) for k, face in enumerate(faces) if "emotion" in face]
        if labelled:
            bgr = cv2.imread(str(REAL_PHOTOS / "images" / name))
            crops.append(recognizer.detect_and_crop(bgr, [as_box(face["box"]) for _k, face in labelled])[1])
            labels += [EMOTIONS.index(face["emotion"]) for _k, face in labelled]
            names += [f"{name} #{k}" for k, _face in labelled]
    return np.concatenate(crops), torch.tensor(labels), names


def calibration(logits, labels, temperature: float) -> dict:
    before = classification_metrics(torch.softmax(logits, 1), labels)
    after = classification_metrics(torch.softmax(logits / temperature, 1), labels)
    return {"faces": len(labels), "accuracy": before["accuracy"], "ece": before["ece"], "ece_scaled": after["ece"],
            "nll": negative_log_likelihood(logits, labels), "nll_scaled": negative_log_likelihood(logits, labels, temperature)}


def model_row(weights: str, fer) -> dict:
    recognizer = EmotionRecognizer(weights, threads=2)
    val_images, val_labels = fer.split("val")
    val_logits = logits_of(recognizer, val_images)
    temperature = fit_temperature(val_logits, val_labels)
    test_images, test_labels = fer.split("test")
    real_crops, real_labels, _names = real_photo_faces(recognizer)
    row = {"weights": weights, "backend": recognizer.backend.name, "temperature": temperature,
           "public_test": calibration(val_logits, torch.as_tensor(val_labels), temperature),
           "private_test": calibration(logits_of(recognizer, test_images), torch.as_tensor(test_labels), temperature),
           "real_photos": calibration(logits_of(recognizer, real_crops), real_labels, temperature)}
    for part in ("private_test", "real_photos"):
        r = row[part]
        print(f"{weights} T={temperature:.3f} {part}: ECE {r['ece']:.4f} -> {r['ece_scaled']:.4f}, "
              f"NLL {r['nll']:.4f} -> {r['nll_scaled']:.4f} ({r['faces']} faces)")
    return row


def main() -> None:
    if not FER_ZIP.is_file():
        sys.exit(f"{FER_ZIP}: FER2013 is needed to fit the temperature on PublicTest")
    fer = data.load(FER_ZIP)
    write_result("calibration", {"models": [model_row(weights, fer) for weights in ("default", "fast")]})


if __name__ == "__main__":
    main()
