"""Composed test photos: real 48x48 FER2013 faces pasted, upscaled, onto larger canvases.

They give face detection and the whole photo pipeline a ground truth (where each face is and its label)
without any photo from outside FER2013.
"""

import cv2
import numpy as np

from resdropnet.faces import box_iou


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random gradient with mild noise: no structure a detector could take for a face."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(60, 200) + rng.uniform(-0.1, 0.1) * xs + rng.uniform(-0.1, 0.1) * ys
    gray = np.clip(base + rng.normal(0, 4, (height, width)), 0, 255).astype(np.uint8)
    tint = rng.uniform(0.8, 1.2, 3)
    return np.clip(np.stack([gray] * 3, axis=-1) * tint, 0, 255).astype(np.uint8)


def compose_photo(faces: np.ndarray, width: int = 640, height: int = 480, face_size: int = 192, seed: int = 0):
    """Pastes each 48x48 uint8 face, upscaled to face_size, at a random non-overlapping place.

    Returns the BGR photo and the (x, y, w, h) box of every face, in the order given.
    """
    rng = np.random.default_rng(seed)
    photo = background(width, height, rng)
    boxes = []
    for face in faces:
        big = cv2.resize(face, (face_size, face_size), interpolation=cv2.INTER_CUBIC)
        for _attempt in range(200):
            x, y = int(rng.integers(0, width - face_size + 1)), int(rng.integers(0, height - face_size + 1))
            if all(not overlaps((x, y, face_size, face_size), box) for box in boxes):
                break
        else:
            raise ValueError(f"cannot place {len(faces)} faces of {face_size}px on a {width}x{height} canvas")
        photo[y : y + face_size, x : x + face_size] = big[..., None]
        boxes.append((x, y, face_size, face_size))
    return photo, boxes


def overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def match_faces(true_boxes, found_boxes, min_iou: float = 0.3) -> list[int | None]:
    """For each true box, the index of the found box paired with it by match_detections, or None."""
    paired = dict(match_detections(true_boxes, found_boxes, min_iou))
    return [paired.get(i) for i in range(len(true_boxes))]


def match_detections(true_boxes, found_boxes, min_iou: float = 0.4) -> list[tuple[int, int]]:
    """One-to-one pairs (true index, found index), best overlaps first, each pair overlapping by at least min_iou."""
    pairs = sorted(((box_iou(t, f), i, j) for i, t in enumerate(true_boxes) for j, f in enumerate(found_boxes)),
                   reverse=True)
    used_true, used_found, matches = set(), set(), []
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i not in used_true and j not in used_found:
            used_true.add(i)
            used_found.add(j)
            matches.append((i, j))
    return matches
