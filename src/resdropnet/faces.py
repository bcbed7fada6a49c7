"""Face detection and cropping: boxes on a photo, then 48x48 gray crops made as FER2013's faces were.

Detectors that work offline right after `pip install`:
  centerface  the default: CenterFace, a small CNN shipped inside the package (MIT), on a copy at most 416 px on
              its longer side (centerface:SIZE for another size: larger finds smaller faces in large group
              photos, slower); boxes carry five landmarks. On the real-photo benchmark (benchmarks/realphotos/):
              every counted face found, no false box in 110 photos
  haar        OpenCV's frontal-face Haar cascade (haarcascade_frontalface_default.xml, inside opencv-python 4.x),
              run on a copy shrunk to 320 px, for faces at least 1/8 of the photo's longer side (80 px in a
              640 px photo): fast, but smaller faces are missed
  haar-full   the same cascade at full resolution, down to 24 px faces: for group photos, several times slower
  haar-alt2   the alt2 cascade (shrunk to 320 px): fewer false faces
  yunet:PATH  OpenCV's YuNet (cv2.FaceDetectorYN) from an ONNX file you supply; no registry package carries one
  none        the whole image is one face (pre-cropped faces)
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from resdropnet.errors import ResDropNetError

FACE_SIZE = 48
DEFAULT_DETECTOR = "centerface"
# FER2013's faces were cropped a little wider than a Haar box: forehead to chin with some hair.
DEFAULT_MARGIN = 0.1


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple = ()  # ((x, y), ...) in pixels: eyes, nose tip, mouth corners, when the detector gives them

    def to_list(self) -> list[int]:
        """[x, y, width, height] in pixels."""
        return [self.x, self.y, self.w, self.h]


class DetectorError(ResDropNetError, ValueError):
    """An unknown detector name or a detector model that cannot be loaded."""


class HaarDetector:
    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", min_size: int = 24,
                 scale_factor: float = 1.12, min_neighbors: int = 3, max_side: int = 320, min_score: float = 2.0,
                 min_fraction: float = 0.125):
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise DetectorError(f"OpenCV {cv2.__version__} has no Haar cascades (5.x wheels dropped them); "
                                "install opencv-python-headless<5")
        path = Path(cv2.data.haarcascades) / cascade
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            raise DetectorError(f"{path}: cannot load the Haar cascade")
        self.min_size, self.scale_factor, self.min_neighbors, self.max_side = min_size, scale_factor, min_neighbors, max_side
        # The smallest scales cost the most windows: skipping faces under min_fraction of the longer side halves
        # the time; on composed FER2013 photos with 120 and 192 px faces recall stayed within a point.
        self.min_fraction = min_fraction
        # Scale step 1.12 rather than 1.1: 20-25% faster, recall on the same photos within a point.
        # The last stage's weight: on composed FER2013 photos, 72 of 75 true faces scored over 2, stray boxes less.
        self.min_score = min_score

    def __call__(self, bgr: np.ndarray) -> list[Box]:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        # Detecting on a shrunken copy is much faster; faces smaller than min_size there are lost.
        shrink = self.max_side / max(gray.shape) if self.max_side and max(gray.shape) > self.max_side else 1.0
        if shrink < 1.0:
            gray = cv2.resize(gray, shrunk_size(gray.shape, shrink), interpolation=cv2.INTER_AREA)
        min_size = max(self.min_size, round(self.min_fraction * max(gray.shape)))
        found, _levels, weights = self.classifier.detectMultiScale3(
            cv2.equalizeHist(gray), scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_size, min_size), outputRejectLevels=True,
        )
        boxes = [Box(*(int(round(v / shrink)) for v in box), float(s))
                 for box, s in zip(found, np.ravel(weights)) if s >= self.min_score]
        return sorted(boxes, key=lambda b: (b.x, b.y))


class YuNetDetector:
    def __init__(self, model_path: str, score_threshold: float = 0.7):
        if not Path(model_path).is_file():
            raise DetectorError(f"{model_path}: no such YuNet ONNX file")
        try:
            self.detector = cv2.FaceDetectorYN.create(model_path, "", (320, 320), score_threshold)
        except cv2.error as error:
            raise DetectorError(f"{model_path}: cannot load as a YuNet model ({error.msg.strip()})") from None

    def __call__(self, bgr: np.ndarray) -> list[Box]:
        height, width = bgr.shape[:2]
        self.detector.setInputSize((width, height))
        _ok, faces = self.detector.detect(bgr)
        if faces is None:
            return []
        boxes = [Box(*clip_box(*map(int, face[:4]), width, height), float(face[-1])) for face in faces]
        return sorted((b for b in boxes if b.w > 0 and b.h > 0), key=lambda b: (b.x, b.y))


CENTERFACE_MODEL = Path(__file__).parent / "detectors" / "centerface.onnx"
CENTERFACE_SIZE = 416  # the default detection size: the longer side of the copy detected on


class CenterFaceDetector:
    """CenterFace (MIT licence; detectors/README.md), a small CNN run with onnxruntime on a copy of the photo whose
    longer side is at most max_side pixels: faces down to about 1/50 of that side, with five landmarks each."""

    STRIDE = 4  # the heatmap's cell, in input pixels

    # 416 px: on the real-photo benchmark every counted face found at 416, 480 and 640 (also with the photos shrunk to
    # 640 and 480 px wide: the 20-30 px faces too), and 416 is the fastest: end to end about 26 ms a 640 px photo on
    # 2 cores against 37 at 480 and 56 at 640. Large photos of small faces need a larger size (centerface:1280).
    def __init__(self, max_side: int = CENTERFACE_SIZE, threshold: float = 0.5, nms_iou: float = 0.3, threads: int = 0):
        import onnxruntime as ort

        from resdropnet.system import onnx_session_options

        self.session = ort.InferenceSession(str(CENTERFACE_MODEL), onnx_session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self.max_side, self.threshold, self.nms_iou = max_side, threshold, nms_iou

    def __call__(self, bgr: np.ndarray) -> list[Box]:
        height, width = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(height, width)) if self.max_side else 1.0
        size = (32 * max(1, int(np.ceil(width * scale / 32))), 32 * max(1, int(np.ceil(height * scale / 32))))
        resized = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        blob = np.ascontiguousarray(resized[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
        heatmap, sizes, offsets, marks = (out[0] for out in self.session.run(None, {"input.1": blob}))
        rows, cols = np.nonzero(heatmap[0] > self.threshold)
        if not len(rows):
            return []
        h, w = np.exp(sizes[0, rows, cols]) * self.STRIDE, np.exp(sizes[1, rows, cols]) * self.STRIDE
        top = np.maximum(0, (rows + offsets[0, rows, cols] + 0.5) * self.STRIDE - h / 2)
        left = np.maximum(0, (cols + offsets[1, rows, cols] + 0.5) * self.STRIDE - w / 2)
        scores = heatmap[0, rows, cols]
        keep = cv2.dnn.NMSBoxes(np.stack([left, top, w, h], 1).tolist(), scores.tolist(), self.threshold, self.nms_iou)
        sx, sy = size[0] / width, size[1] / height
        boxes = []
        for i in np.ravel(keep):
            points = tuple((round(float(left[i] + marks[2 * j + 1, rows[i], cols[i]] * w[i]) / sx, 1),
                            round(float(top[i] + marks[2 * j, rows[i], cols[i]] * h[i]) / sy, 1)) for j in range(5))
            x, y, bw, bh = clip_box(int(round(left[i] / sx)), int(round(top[i] / sy)), int(round(w[i] / sx)),
                                    int(round(h[i] / sy)), width, height)
            if bw > 0 and bh > 0:
                boxes.append(Box(x, y, bw, bh, float(scores[i]), points))
        return sorted(boxes, key=lambda b: (b.x, b.y))


class WholeImage:
    def __call__(self, bgr: np.ndarray) -> list[Box]:
        height, width = bgr.shape[:2]
        return [Box(0, 0, width, height)]


def create_detector(name: str = DEFAULT_DETECTOR, threads: int = 0):
    """A detector by name; threads: the CNN detectors' onnxruntime threads (0 lets it choose)."""
    if name == "haar":
        return HaarDetector()
    if name == "haar-alt2":
        return HaarDetector("haarcascade_frontalface_alt2.xml")
    if name == "haar-full":
        return HaarDetector(max_side=0, min_fraction=0.0, scale_factor=1.1)
    if name == "centerface" or name.startswith("centerface:"):
        size = name.split(":", 1)[1] if ":" in name else str(CENTERFACE_SIZE)
        if not size.isdigit() or not 64 <= int(size) <= 8192:
            raise DetectorError(f"{name!r}: centerface:SIZE takes the longer side to detect at, 64 to 8192 pixels")
        return CenterFaceDetector(max_side=int(size), threads=threads)
    if name.startswith("yunet:"):
        return YuNetDetector(name.split(":", 1)[1])
    if name == "none":
        return WholeImage()
    raise DetectorError(f"unknown detector {name!r}: use haar, haar-full, haar-alt2, centerface[:SIZE], "
                        "yunet:PATH.onnx or none")


def smaller_faces_hint(detector: str) -> str:
    """What to try when a detector found no face, for the detectors that shrink the photo first ("" for others)."""
    if detector == "haar":
        return "the haar detector finds faces at least 1/8 of a photo's longer side; --detector centerface finds smaller ones"
    if detector == "centerface":
        return (f"centerface detects on a copy {CENTERFACE_SIZE} px on its longer side; for small faces in a large "
                "photo try --detector centerface:1280")
    return ""


def shrunk_size(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    """cv2's (width, height) of an image scaled by scale, never 0: a 10000x10 photo stays at least 1 pixel tall."""
    height, width = shape[:2]
    return max(1, round(width * scale)), max(1, round(height * scale))


def box_iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    w = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - w * h
    return w * h / union if union else 0.0


def clip_box(x: int, y: int, w: int, h: int, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def crop_face(gray: np.ndarray, box: Box, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """A square 48x48 uint8 crop around box, widened by margin on each side; the border is replicated."""
    side = int(round(max(box.w, box.h) * (1 + 2 * margin)))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = max(0, -x0, -y0, x0 + side - gray.shape[1], y0 + side - gray.shape[0])
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    crop = gray[y0 : y0 + side, x0 : x0 + side]
    return resize_face(crop)


def resize_face(gray: np.ndarray) -> np.ndarray:
    """Any gray crop to 48x48: area averaging when shrinking (as FER2013's were), bilinear when enlarging."""
    if gray.shape == (FACE_SIZE, FACE_SIZE):
        return np.ascontiguousarray(gray, dtype=np.uint8)
    shrinking = gray.shape[0] > FACE_SIZE or gray.shape[1] > FACE_SIZE
    return cv2.resize(gray, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


# Where FER2013's framing puts the middle of the eyes and the middle of the mouth, as fractions of the crop's side:
# CenterFace's medians on 360 PrivateTest faces (of 400 tried), each enlarged to 192 px on a gray canvas.
FER_EYES = (0.498, 0.394)
FER_MOUTH = (0.501, 0.747)


def align_face(gray: np.ndarray, landmarks) -> np.ndarray:
    """A 48x48 crop turned upright and framed as FER2013's faces: the middle of the eyes and the middle of the mouth
    (from five landmarks: eyes, nose tip, mouth corners) land where they lie in FER2013's crops."""
    points = np.asarray(landmarks, np.float64)
    eyes, mouth = points[:2].mean(0), points[3:5].mean(0)
    source, target = complex(*(mouth - eyes)), complex(FER_MOUTH[0] - FER_EYES[0], FER_MOUTH[1] - FER_EYES[1])
    if abs(source) < 1:  # landmarks on top of each other: nothing to align by
        raise ValueError("degenerate landmarks")
    # Warp to a crop near the face's own size, then area-average to 48 px as crop_face does.
    side = int(np.clip(round(abs(source) / abs(target)), FACE_SIZE, 4 * FACE_SIZE))
    turn = target * side / source  # rotation and scale, as one complex number
    shift = complex(*FER_EYES) * side - turn * complex(*eyes)
    matrix = np.array([[turn.real, -turn.imag, shift.real], [turn.imag, turn.real, shift.imag]])
    crop = cv2.warpAffine(gray, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return resize_face(crop)


def crop_faces(bgr: np.ndarray, boxes: list[Box], margin: float = DEFAULT_MARGIN, align: bool = True) -> np.ndarray:
    """48x48 gray crops: aligned by landmarks (align_face) where the box has them and align is on, else crop_face."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if not boxes:
        return np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8)
    return np.stack([aligned_or_box_crop(gray, box, margin, align) for box in boxes])


def aligned_or_box_crop(gray: np.ndarray, box: Box, margin: float, align: bool) -> np.ndarray:
    if align and len(box.landmarks) == 5:
        try:
            return align_face(gray, box.landmarks)
        except ValueError:
            pass
    return crop_face(gray, box, margin)
