"""Draws faces on a BGR image: box, top emotion with its confidence, and a bar per emotion."""

import cv2
import numpy as np

from resdropnet.labels import EMOTIONS

# One BGR colour per emotion, in EMOTIONS order.
COLORS = [(60, 60, 230), (60, 160, 60), (170, 80, 170), (40, 200, 250), (200, 120, 40), (230, 200, 40), (170, 170, 170)]
FONT = cv2.FONT_HERSHEY_SIMPLEX


def annotate(bgr: np.ndarray, faces) -> np.ndarray:
    canvas = bgr.copy()
    scale = max(0.4, min(canvas.shape[:2]) / 900)
    for face in faces:
        x, y, w, h = face.box.to_list()
        color = COLORS[EMOTIONS.index(face.emotion)]
        thickness = max(1, int(round(2 * scale)))
        cv2.rectangle(canvas, (x, y), (x + w, y + h), color, thickness)
        for point in face.box.landmarks:
            cv2.circle(canvas, tuple(int(round(v)) for v in point), thickness + 1, color, -1, cv2.LINE_AA)
        label = f"{face.emotion} {face.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(label, FONT, scale, thickness)
        top = max(th + base, y)
        cv2.rectangle(canvas, (x, top - th - base), (x + tw, top), color, -1)
        cv2.putText(canvas, label, (x, top - base), FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)
        draw_bars(canvas, face, x, y + h + 4, max(w, 60), scale)
    return canvas


def draw_bars(canvas: np.ndarray, face, x: int, y: int, width: int, scale: float) -> None:
    """Seven labelled bars on a dark panel below the box (cut off where the image ends)."""
    bar_height = max(8, int(14 * scale))
    text_scale = scale * 0.6
    width = max(width, int(120 * scale))
    bottom = min(canvas.shape[0], y + len(EMOTIONS) * (bar_height + 2))
    if bottom > y:
        panel = canvas[y:bottom, x : x + width]
        panel[:] = (panel * 0.35).astype(np.uint8)
    for row, emotion in enumerate(EMOTIONS):
        top = y + row * (bar_height + 2)
        if top + bar_height > canvas.shape[0]:
            return
        length = int(face.probabilities[emotion] * width * 0.6)
        cv2.rectangle(canvas, (x + int(width * 0.4), top), (x + int(width * 0.4) + length, top + bar_height),
                      COLORS[row], -1)
        cv2.putText(canvas, emotion[:3], (x, top + bar_height - 1), FONT, text_scale, (255, 255, 255), 1, cv2.LINE_AA)
