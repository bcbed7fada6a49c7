"""Does turning faces upright by their landmarks help? PrivateTest faces pasted into photos, tilted and scaled.

    python benchmarks/alignment.py [--faces 300]     # writes benchmarks/results/alignment.json (FER2013 needed)

Each PrivateTest face (the first N) is enlarged to 96-224 px, turned by a random angle, and pasted on a 640x480
gray-noise photo. For tilts of 0 and up to +-30 degrees: the share of faces found (IoU >= 0.4 with the pasted
square) and the accuracy over all faces (a face not found counts as wrong), for the Haar detector and for
CenterFace with and without alignment. The faces themselves, classified as 48x48 crops, give the ceiling.
"""

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import FER_ZIP, write_result  # noqa: E402

from resdropnet.evaluation.photos import match_faces  # noqa: E402
from resdropnet.inference import EmotionRecognizer  # noqa: E402
from resdropnet.labels import EMOTIONS  # noqa: E402

SETUPS = {"haar": {"detector": "haar"}, "centerface, box crop": {"detector": "centerface", "align": False},
          "centerface, aligned": {"detector": "centerface", "align": True}}


def tilted_photo(face: np.ndarray, angle: float, size: int, rng) -> tuple[np.ndarray, list[int]]:
    photo = np.clip(rng.normal(128, 20, (480, 640)), 0, 255).astype(np.uint8)
    big = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    turn = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
    tilted = cv2.warpAffine(big, turn, (size, size), borderMode=cv2.BORDER_REPLICATE)
    x, y = int(rng.integers(0, 640 - size)), int(rng.integers(0, 480 - size))
    photo[y : y + size, x : x + size] = tilted
    return cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR), [x, y, size, size]


def measure(faces, labels, max_angle: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    photos = [tilted_photo(face, float(rng.uniform(-max_angle, max_angle)), int(rng.integers(96, 225)), rng)
              for face in faces]
    row = {}
    for name, options in SETUPS.items():
        recognizer = EmotionRecognizer(**options)
        found = right = 0
        for (photo, box), label in zip(photos, labels):
            predicted = recognizer.predict(photo)
            (match,) = match_faces([box], [f.box.to_list() for f in predicted])
            if match is not None:
                found += 1
                right += predicted[match].emotion == EMOTIONS[label]
        row[name] = {"found": found / len(faces), "accuracy": right / len(faces)}
        print(f"tilt up to {max_angle:g}, {name}: found {found / len(faces):.1%}, accuracy {right / len(faces):.1%}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=300)
    args = parser.parse_args()
    from resdropnet import data

    images, labels = data.load(FER_ZIP).split("test")
    images, labels = images[: args.faces], labels[: args.faces]
    ceiling = float(np.mean(EmotionRecognizer(detector="none").classify_faces(images).argmax(1) == labels))
    rows = {f"up to {angle} degrees": measure(images, labels, angle) for angle in (0, 30)}
    write_result("alignment", {"faces": args.faces, "crops_accuracy": ceiling, "tilts": rows})


if __name__ == "__main__":
    main()
