"""Emotions over a video or a live camera: per-frame faces, tracks, annotated video, CSV, summary and plot."""

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from resdropnet.errors import ResDropNetError
from resdropnet.faces import box_iou
from resdropnet.inference.annotate import annotate
from resdropnet.labels import EMOTIONS

FRAME_BATCH = 32


class VideoError(ResDropNetError, ValueError):
    """A video file or camera that cannot be opened or read; the message names it."""


@dataclass
class FrameFaces:
    frame: int
    timestamp: float
    faces: list
    tracks: list[int] = field(default_factory=list)


class Tracker:
    """Greedy IoU matching against each track's last box: enough to follow faces that move smoothly."""

    def __init__(self, min_iou: float = 0.3):
        self.min_iou = min_iou
        self.last_boxes: dict[int, object] = {}

    def assign(self, faces) -> list[int]:
        free, ids = dict(self.last_boxes), []
        for face in faces:
            best = max(free, key=lambda t: box_iou(free[t].to_list(), face.box.to_list()), default=None)
            if best is None or box_iou(free[best].to_list(), face.box.to_list()) < self.min_iou:
                best = len(self.last_boxes)
            free.pop(best, None)
            self.last_boxes[best] = face.box
            ids.append(best)
        return ids


def open_capture(source) -> cv2.VideoCapture:
    name = f"camera {source}" if isinstance(source, int) else str(source)
    if isinstance(source, str) and not Path(source).is_file():
        raise VideoError(f"{source}: no such video file")
    # OpenCV warns on stderr about each backend that fails to open the source; our one error says it instead.
    log_level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        capture = cv2.VideoCapture(source)
    finally:
        cv2.utils.logging.setLogLevel(log_level)
    if not capture.isOpened():
        raise VideoError(f"{name}: cannot open as a video")
    return capture


def analyse_video(recognizer, source, out_video=None, every: int = 1, max_frames: int = 0,
                  progress: bool = True) -> "VideoAnalysis":
    """Reads source (a path or a camera index), classifies faces on every `every`-th frame in batches and
    writes the annotated video if asked."""
    from tqdm import tqdm

    source = source if isinstance(source, int) else str(source)
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if isinstance(source, str) else 0
    writer, results, pending, tracker, shown = None, [], [], Tracker(), []
    bar = tqdm(total=total or None, unit="frame", disable=not progress, desc=str(source))
    index = 0
    while not max_frames or index < max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        if writer is None and out_video:
            writer = open_writer(out_video, fps, frame.shape)
        pending.append((index, frame))
        if len(pending) == FRAME_BATCH:
            shown = flush(recognizer, pending, every, fps, tracker, results, writer, shown)
        index += 1
        bar.update(1)
    shown = flush(recognizer, pending, every, fps, tracker, results, writer, shown)
    bar.close()
    capture.release()
    if writer is not None:
        writer.release()
    if index == 0:
        raise VideoError(f"{source}: no frame could be read")
    return VideoAnalysis(results, fps, index)


def open_writer(path, fps: float, shape) -> cv2.VideoWriter:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise VideoError(f"{path}: cannot write a video there")
    return writer


def flush(recognizer, pending, every, fps, tracker, results, writer, shown):
    """Classifies the faces of the pending frames in one batch, then draws and writes them in order."""
    chosen = [(i, frame) for i, frame in pending if i % every == 0]
    boxes, crops = zip(*(recognizer.detect_and_crop(frame) for _i, frame in chosen)) if chosen else ((), ())
    faces_by_frame = dict(zip((i for i, _f in chosen), recognizer.faces_from_crops(boxes, crops)))
    for i, frame in pending:
        if i in faces_by_frame:
            shown = faces_by_frame[i]
            results.append(FrameFaces(i, i / fps, shown, tracker.assign(shown)))
        if writer is not None:
            writer.write(annotate(frame, shown))
    pending.clear()
    return shown


@dataclass
class VideoAnalysis:
    """What analyse_video found: each analysed frame with its faces and their tracks, the frame rate, frames read."""

    frames: list[FrameFaces]
    fps: float
    frames_read: int

    def write_csv(self, path) -> None:
        """A row per face per analysed frame; an analysed frame without a face gets an empty row."""
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["frame", "timestamp_s", "track", "x", "y", "w", "h", "emotion", "confidence", *EMOTIONS])
            for frame in self.frames:
                if not frame.faces:
                    writer.writerow([frame.frame, f"{frame.timestamp:.3f}", *[""] * (7 + len(EMOTIONS))])
                for track, face in zip(frame.tracks, frame.faces):
                    writer.writerow([frame.frame, f"{frame.timestamp:.3f}", track, *face.box.to_list(), face.emotion,
                                     f"{face.confidence:.4f}", *(f"{face.probabilities[e]:.4f}" for e in EMOTIONS)])

    def summary(self) -> dict:
        """Frames read and analysed, the dominant emotion overall and per track, the count of each emotion."""
        overall, per_track = Counter(), {}
        for frame in self.frames:
            for track, face in zip(frame.tracks, frame.faces):
                overall[face.emotion] += 1
                per_track.setdefault(track, Counter())[face.emotion] += 1
        return {
            "frames_read": self.frames_read,
            "frames_analysed": len(self.frames),
            "fps": self.fps,
            "frames_with_faces": sum(1 for f in self.frames if f.faces),
            "dominant_emotion": overall.most_common(1)[0][0] if overall else None,
            "emotion_counts": dict(overall),
            "tracks": {str(t): {"frames": sum(c.values()), "dominant_emotion": c.most_common(1)[0][0]}
                       for t, c in sorted(per_track.items())},
        }

    def plot(self, path) -> None:
        """Mean probability of each emotion over the faces of each analysed frame, against time."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with_faces = [f for f in self.frames if f.faces]
        means = np.array([[np.mean([face.probabilities[e] for face in f.faces]) for e in EMOTIONS]
                          for f in with_faces]).reshape(-1, len(EMOTIONS))
        figure, axis = plt.subplots(figsize=(9, 3.5))
        for column, emotion in enumerate(EMOTIONS):
            axis.plot([f.timestamp for f in with_faces], means[:, column], label=emotion)
        axis.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1), title="Emotions over time")
        axis.legend(ncol=7, fontsize=7, loc="upper center")
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
