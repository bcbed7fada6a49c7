"""EmotionRecognizer: photos in, faces with their emotions out."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from resdropnet.faces import DEFAULT_DETECTOR, DEFAULT_MARGIN, Box, create_detector, crop_faces, resize_face
from resdropnet.images import read_image, to_bgr
from resdropnet.inference.backends import TTA_MODES, create_backend, softmax, to_model_input
from resdropnet.labels import EMOTIONS


@dataclass
class Face:
    box: Box
    probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def emotion(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.emotion]

    def to_dict(self) -> dict:
        return {"box": self.box.to_list(), "detection_score": round(self.box.score, 4), "emotion": self.emotion,
                "confidence": round(self.confidence, 6),
                "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()}}


class EmotionRecognizer:
    """Finds faces and classifies their expression into the seven FER2013 emotions.

    weights: a shipped model ("default": the most accurate; "fast": distilled, for speed), a .safetensors file,
        or an .onnx file.
    detector: "haar" (default), "haar-alt2", "yunet:PATH.onnx", or "none" (the whole image is the face).
    backend: "auto" (int8 onnxruntime for shipped models, onnxruntime for .onnx files, torch otherwise), "torch",
        "onnx" (fp32), or "onnx-int8" (the int8-quantised ONNX model beside the weights; accuracy in the model card).
    """

    def __init__(self, weights="default", detector: str = DEFAULT_DETECTOR, backend: str = "auto",
                 margin: float = DEFAULT_MARGIN, tta: str = "none", threads: int = 0, batch_size: int = 256):
        if tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")
        self.backend = create_backend(weights, backend, threads)
        self.detector_name = detector
        self.detector = create_detector(detector)
        self.margin = 0.0 if detector == "none" else margin
        self.tta = tta
        self.batch_size = batch_size

    def classify_faces(self, faces) -> np.ndarray:
        """Probabilities (N x 7, EMOTIONS order) for pre-cropped faces: gray or color arrays of any size."""
        crops = np.stack([resize_face(_gray(face)) for face in faces]) if len(faces) else np.zeros((0, 48, 48), np.uint8)
        outputs = [self._probabilities(crops[i : i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, len(EMOTIONS)), np.float32)

    def _probabilities(self, crops: np.ndarray) -> np.ndarray:
        batch = to_model_input(crops)
        probabilities = softmax(self.backend.logits(batch))
        if self.tta == "flip":
            probabilities = (probabilities + softmax(self.backend.logits(np.ascontiguousarray(batch[..., ::-1])))) / 2
        return probabilities

    def detect(self, image, channel_order: str = "bgr") -> tuple[np.ndarray, list[Box]]:
        bgr = load_bgr(image, channel_order)
        return bgr, self.detector(bgr)

    def predict(self, image, boxes=None, channel_order: str = "bgr") -> list[Face]:
        """image: a path, a numpy array (BGR by default, gray, RGB with channel_order='rgb') or a PIL image.
        boxes: your own face boxes as (x, y, w, h); detection is skipped."""
        return self.predict_many([image], None if boxes is None else [boxes], channel_order)[0]

    def predict_many(self, images, boxes=None, channel_order: str = "bgr") -> list[list[Face]]:
        """One list of faces per image; all faces of all images are classified in shared batches."""
        per_image_boxes, crops = [], []
        for index, image in enumerate(images):
            found, face_crops = self.detect_and_crop(load_bgr(image, channel_order),
                                                     None if boxes is None else [as_box(b) for b in boxes[index]])
            per_image_boxes.append(found)
            crops.append(face_crops)
        return self.faces_from_crops(per_image_boxes, crops)

    def detect_and_crop(self, bgr: np.ndarray, boxes: list[Box] | None = None) -> tuple[list[Box], np.ndarray]:
        """The faces' boxes (detected unless given) and their 48x48 crops, ready for faces_from_crops."""
        found = self.detector(bgr) if boxes is None else boxes
        return found, crop_faces(bgr, found, self.margin)

    def faces_from_crops(self, per_image_boxes: list[list[Box]], crops: list[np.ndarray]) -> list[list[Face]]:
        all_crops = np.concatenate(crops) if crops else np.zeros((0, 48, 48), np.uint8)
        probabilities = self.classify_faces(all_crops)
        results, start = [], 0
        for found in per_image_boxes:
            rows = probabilities[start : start + len(found)]
            results.append([Face(box, dict(zip(EMOTIONS, map(float, row)))) for box, row in zip(found, rows)])
            start += len(found)
        return results


def load_bgr(image, channel_order: str = "bgr") -> np.ndarray:
    if isinstance(image, (str, Path)):
        return read_image(image)
    return to_bgr(image, channel_order)


def as_box(box) -> Box:
    if isinstance(box, Box):
        return box
    x, y, w, h = (int(v) for v in box[:4])
    return Box(x, y, w, h)


def _gray(face) -> np.ndarray:
    array = np.asarray(face)
    if array.ndim == 2 and array.dtype == np.uint8:
        return array
    import cv2

    return cv2.cvtColor(to_bgr(array), cv2.COLOR_BGR2GRAY)
