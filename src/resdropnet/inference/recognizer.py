"""EmotionRecognizer: photos in, faces with their emotions out."""

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from resdropnet.errors import ResDropNetError
from resdropnet.faces import DEFAULT_DETECTOR, DEFAULT_MARGIN, Box, create_detector, crop_faces, resize_face
from resdropnet.images import FILE_FAILURES, failure_message, list_images, read_image, to_bgr
from resdropnet.inference.backends import TTA_MODES, create_backend, softmax, to_model_input
from resdropnet.labels import EMOTIONS


@dataclass
class Face:
    box: Box
    probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def emotion(self) -> str:
        """The most probable of the seven emotions."""
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def confidence(self) -> float:
        """The probability of the most probable emotion."""
        return self.probabilities[self.emotion]

    def to_dict(self) -> dict:
        """The face as JSON: box, detection score, emotion, confidence and the seven probabilities; and the
        detector's landmarks ([x, y] of the eyes, nose tip and mouth corners) when it gives them."""
        record = {"box": self.box.to_list(), "detection_score": round(self.box.score, 4), "emotion": self.emotion,
                  "confidence": round(self.confidence, 6),
                  "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()}}
        if self.box.landmarks:
            record["landmarks"] = [list(point) for point in self.box.landmarks]
        return record


@dataclass
class ImagePrediction:
    """The faces of one image file, or why the file could not be read (error names the file; faces is empty)."""

    path: Path | str  # a str for a URI
    faces: list[Face] = field(default_factory=list)
    width: int = 0
    height: int = 0
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)  # the decoded BGR image, if asked for (keep_images)

    @classmethod
    def missing(cls, path) -> "ImagePrediction":
        """The prediction of a path that does not exist: its error, as every engine reports it."""
        return cls(path, error=f"{path}: no such file or folder")

    def to_dict(self) -> dict:
        """The prediction as JSON: the file with its size and faces, or with its error."""
        if self.error:
            return {"file": str(self.path), "error": self.error}
        return {"file": str(self.path), "width": self.width, "height": self.height,
                "faces": [face.to_dict() for face in self.faces]}


class EmotionRecognizer:
    """Finds faces and classifies their expression into the seven FER2013 emotions.

    Args:
        weights: a shipped model ("default": the most accurate; "fast": distilled, for speed), a .safetensors file
            or an .onnx file; files are checked before use (WeightsError names the file).
        detector: "centerface" (default: a CNN shipped in the package, detecting on a copy 416 px on its longer
            side; faces carry landmarks; "centerface:1280" detects on a larger copy, for small faces in large
            photos), "haar", "haar-full", "haar-alt2", "yunet:PATH.onnx", or "none" (the whole image is the face);
            or a detector of your own: any callable taking a BGR image and returning a list of `Box`.
        backend: "auto" (int8 onnxruntime for shipped models, onnxruntime for .onnx files, torch otherwise),
            "torch", "onnx" (fp32), or "onnx-int8" (the int8 ONNX model beside the weights; accuracy in the card).
        margin: how much each face box is widened on every side before the square crop.
        tta: "none" or "flip" (each face also classified mirrored, the probabilities averaged).
        threads: onnxruntime's or torch's threads; 0 lets them choose.
        batch_size: faces classified per call of the backend.
        align: with a detector that gives landmarks (centerface), turn each face upright and frame it as FER2013's
            faces are framed before classifying; False crops the box as it is.
    """

    def __init__(self, weights: str | Path = "default", detector: str | Callable = DEFAULT_DETECTOR, backend: str = "auto",
                 margin: float = DEFAULT_MARGIN, tta: str = "none", threads: int = 0, batch_size: int = 256,
                 align: bool = True):
        if tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")
        self.backend = create_backend(weights, backend, threads)
        named = isinstance(detector, str)
        self.detector_name = detector if named else type(detector).__name__
        self.detector = create_detector(detector, threads) if named else detector
        self.margin = 0.0 if detector == "none" else margin
        self.align = align
        self.tta = tta
        self.batch_size = batch_size

    def classify_faces(self, faces, deadline: float | None = None) -> np.ndarray:
        """Probabilities (N x 7, EMOTIONS order) for pre-cropped faces: gray or color arrays of any size.

        deadline: a time.monotonic() value; past it, DeadlineExceeded is raised before the next batch."""
        crops = np.stack([resize_face(_gray(face)) for face in faces]) if len(faces) else np.zeros((0, 48, 48), np.uint8)
        outputs = []
        for start in range(0, len(crops), self.batch_size):
            check_deadline(deadline)
            outputs.append(self._probabilities(crops[start : start + self.batch_size]))
        return np.concatenate(outputs) if outputs else np.zeros((0, len(EMOTIONS)), np.float32)

    def _probabilities(self, crops: np.ndarray) -> np.ndarray:
        batch = to_model_input(crops)
        probabilities = softmax(self.backend.logits(batch))
        if self.tta == "flip":
            probabilities = (probabilities + softmax(self.backend.logits(np.ascontiguousarray(batch[..., ::-1])))) / 2
        return probabilities

    def detect(self, image, channel_order: str = "bgr") -> tuple[np.ndarray, list[Box]]:
        """The image as BGR (from any input predict takes) and the detector's face boxes on it."""
        bgr = load_bgr(image, channel_order)
        return bgr, self.detector(bgr)

    def predict(self, image, boxes=None, channel_order: str = "bgr") -> list[Face]:
        """image: a path, a numpy array (BGR by default, gray, RGB with channel_order='rgb') or a PIL image.
        boxes: your own face boxes as (x, y, w, h); detection is skipped."""
        return self.predict_many([image], None if boxes is None else [boxes], channel_order)[0]

    def predict_many(self, images, boxes=None, channel_order: str = "bgr", deadline: float | None = None) -> list[list[Face]]:
        """One list of faces per image; all faces of all images are classified in shared batches.

        deadline: a time.monotonic() value; past it, DeadlineExceeded is raised before the next image or batch,
        so work that nobody waits for any more stops soon."""
        per_image_boxes, crops = [], []
        for index, image in enumerate(images):
            check_deadline(deadline)
            found, face_crops = self.detect_and_crop(load_bgr(image, channel_order),
                                                     None if boxes is None else [as_box(b) for b in boxes[index]])
            per_image_boxes.append(found)
            crops.append(face_crops)
        return self.faces_from_crops(per_image_boxes, crops, deadline)

    def predict_files(self, paths, batch_images: int = 16, progress: bool = False,
                      keep_images: bool = False) -> Iterator[ImagePrediction]:
        """Predictions for image files and folders (searched recursively for JPEG, PNG, WebP, BMP), in order.

        A missing path or a file that is not a readable image yields a prediction with its error, and the rest go
        on. The faces of batch_images images at a time are classified together; progress: a bar on stderr;
        keep_images: each prediction also holds its decoded image (e.g. to draw on), else only its size.
        """
        from tqdm import tqdm

        files, missing = list_images([paths] if isinstance(paths, (str, Path)) else paths)
        for path in missing:
            yield ImagePrediction.missing(path)
        with tqdm(total=len(files), unit="image", file=sys.stderr, disable=not progress) as bar:
            for start in range(0, len(files), batch_images):
                chunk = files[start : start + batch_images]
                yield from self.predict_paths(chunk, keep_images)
                bar.update(len(chunk))

    def predict_paths(self, paths: list, keep_images: bool = False) -> list[ImagePrediction]:
        """One prediction per image file, in order, their faces classified in one batch: local paths or URIs that
        pyarrow.fs reads (no folder search). A file that cannot be read or processed gets its error."""
        predictions, boxes, crops = [], [], []
        for path in paths:
            try:
                bgr = read_image(path)
                found, face_crops = self.detect_and_crop(bgr)
            except FILE_FAILURES as error:  # one photo's failure must not end the run
                predictions.append(ImagePrediction(path, error=failure_message(path, error)))
                continue
            predictions.append(ImagePrediction(path, width=bgr.shape[1], height=bgr.shape[0],
                                               image=bgr if keep_images else None))
            boxes.append(found)
            crops.append(face_crops)
        readable = (prediction for prediction in predictions if prediction.error is None)
        for prediction, faces in zip(readable, self.faces_from_crops(boxes, crops)):
            prediction.faces = faces
        return predictions

    def predict_video(self, source, every: int = 1, max_frames: int = 0, out=None, progress: bool = False,
                      start: float | str | None = None, end: float | str | None = None):
        """Faces, emotions and face tracks over a video file or a camera (an int index), every `every`-th frame.

        out: a path for the annotated video. start, end: the time range to analyse, in seconds or as [HH:]MM:SS;
        frame numbers and timestamps stay those of the whole video. Returns a VideoAnalysis: .frames, .fps,
        .summary(), .write_csv(path), .plot(path). Raises VideoError (naming the source) when it cannot be opened
        or read, ValueError for a time that cannot be parsed.
        """
        from resdropnet.inference.video import analyse_video, parse_time

        return analyse_video(self, source, out, every, max_frames, progress, parse_time(start), parse_time(end))

    def detect_and_crop(self, bgr: np.ndarray, boxes: list[Box] | None = None) -> tuple[list[Box], np.ndarray]:
        """The faces' boxes (detected unless given) and their 48x48 crops, ready for faces_from_crops."""
        found = self.detector(bgr) if boxes is None else boxes
        return found, crop_faces(bgr, found, self.margin, self.align)

    def faces_from_crops(self, per_image_boxes: list[list[Box]], crops: list[np.ndarray],
                         deadline: float | None = None) -> list[list[Face]]:
        """Classifies the crops of detect_and_crop in shared batches: one list of Faces per image, in order."""
        all_crops = np.concatenate(crops) if crops else np.zeros((0, 48, 48), np.uint8)
        probabilities = self.classify_faces(all_crops, deadline)
        results, start = [], 0
        for found in per_image_boxes:
            rows = probabilities[start : start + len(found)]
            results.append([Face(box, dict(zip(EMOTIONS, map(float, row)))) for box, row in zip(found, rows)])
            start += len(found)
        return results


class DeadlineExceeded(ResDropNetError, TimeoutError):
    """Work stopped at a batch boundary because its deadline had passed."""


def check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlineExceeded("stopped: past the deadline")


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
    return cv2.cvtColor(to_bgr(array), cv2.COLOR_BGR2GRAY)
