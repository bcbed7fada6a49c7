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
    """Follows faces across analysed frames: each new box joins the track whose last box overlaps it most (IoU), or
    whose last box's centre lies within half a face of its own (a face that moved fast); best pairs first. A track
    that finds no face for more than max_missed analysed frames ends, so a face that the detector misses for a few
    frames keeps its id, and a new face in an old place gets a new one."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5):
        self.min_iou, self.max_missed = min_iou, max_missed
        self.last_boxes: dict[int, object] = {}
        self.missed: dict[int, int] = {}
        self.next_id = 0

    def assign(self, faces) -> list[int]:
        pairs = sorted(((self.affinity(box, face.box), track, index) for track, box in self.last_boxes.items()
                        for index, face in enumerate(faces)), key=lambda pair: -pair[0])
        ids: dict[int, int] = {}
        for score, track, index in pairs:
            if score > 0 and index not in ids and track not in ids.values():
                ids[index] = track
        for index, face in enumerate(faces):
            if index not in ids:
                ids[index], self.next_id = self.next_id, self.next_id + 1
            self.last_boxes[ids[index]], self.missed[ids[index]] = face.box, 0
        for track in [t for t in self.last_boxes if t not in ids.values()]:
            self.missed[track] += 1
            if self.missed[track] > self.max_missed:
                del self.last_boxes[track], self.missed[track]
        return [ids[index] for index in range(len(faces))]

    def affinity(self, a, b) -> float:
        """IoU when it reaches min_iou; else a score below it when the centres lie within half a face; else 0."""
        iou = box_iou(a.to_list(), b.to_list())
        if iou >= self.min_iou:
            return iou
        distance = np.hypot(a.x + a.w / 2 - b.x - b.w / 2, a.y + a.h / 2 - b.y - b.h / 2)
        reach = 0.5 * max(a.w, b.w)
        return self.min_iou * (1 - distance / reach) if distance < reach else 0.0


def parse_time(text: str | float | None) -> float | None:
    """Seconds from '90', '90.5', '1:30' or '00:01:30.5'; None stays None. ValueError names the text."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    try:
        parts = [float(part) for part in str(text).split(":")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or any(part < 0 for part in parts) or any(p >= 60 for p in parts[1:]):
        raise ValueError(f"{text!r} is not a time: give seconds (90.5) or [HH:]MM:SS")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


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
                  progress: bool = True, start: float | None = None, end: float | None = None) -> "VideoAnalysis":
    """Reads source (a path or a camera index) from start to end (seconds; None: from the beginning, to the
    end), classifies faces on every `every`-th frame in batches and writes the annotated video if asked. Frame
    numbers and timestamps count from the beginning of the video, not from start."""
    from tqdm import tqdm

    source = source if isinstance(source, int) else str(source)
    if end is not None and end <= (start or 0):
        raise VideoError(f"{source}: the end ({end:g} s) must come after the start ({start or 0:g} s)")
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    first = seek(capture, source, start, fps)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) - first if isinstance(source, str) else 0
    if end is not None:
        total = min(total, int(np.ceil(end * fps)) - first) if total else int(np.ceil(end * fps)) - first
    writer, results, pending, tracker, shown = None, [], [], Tracker(), []
    bar = tqdm(total=total or None, unit="frame", disable=not progress, desc=str(source))
    index = first
    while not max_frames or index - first < max_frames:
        if end is not None and index / fps >= end:
            break
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
    if index == first:
        where = f" after {start:g} s" if start else ""
        raise VideoError(f"{source}: no frame could be read{where}")
    return VideoAnalysis(results, fps, index - first)


def seek(capture: cv2.VideoCapture, source, start: float | None, fps: float) -> int:
    """Moves to the frame at start seconds; the number of that frame (0 without start)."""
    if not start:
        return 0
    if isinstance(source, int):
        raise VideoError(f"camera {source}: a live camera cannot start at {start:g} s")
    wanted = int(round(start * fps))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if total and wanted >= total:
        raise VideoError(f"{source}: starts at {start:g} s, but the video lasts {total / fps:.2f} s")
    capture.set(cv2.CAP_PROP_POS_FRAMES, wanted)
    return int(capture.get(cv2.CAP_PROP_POS_FRAMES)) or wanted


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
        """Frames read and analysed, the dominant emotion overall, the count of each emotion, and per track its
        span, its number of frames, its mean probabilities over the whole track and their dominant emotion."""
        overall = Counter(face.emotion for frame in self.frames for face in frame.faces)
        return {
            "frames_read": self.frames_read,
            "frames_analysed": len(self.frames),
            "fps": self.fps,
            "frames_with_faces": sum(1 for f in self.frames if f.faces),
            "dominant_emotion": overall.most_common(1)[0][0] if overall else None,
            "emotion_counts": dict(overall),
            "tracks": {str(track): track_summary(points) for track, points in sorted(self.tracks().items())},
        }

    def tracks(self) -> dict[int, list[tuple[float, object]]]:
        """Each track's (timestamp, face) in time order."""
        found: dict[int, list] = {}
        for frame in self.frames:
            for track, face in zip(frame.tracks, frame.faces):
                found.setdefault(track, []).append((frame.timestamp, face))
        return found

    def plot(self, path, max_tracks: int = 6) -> None:
        """The probability of each emotion against time, one panel per track (the longest max_tracks)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        tracks = sorted(sorted(self.tracks().items(), key=lambda item: -len(item[1]))[:max_tracks])
        figure, axes = plt.subplots(max(1, len(tracks)), 1, figsize=(9, 1.2 + 2.2 * max(1, len(tracks))),
                                    sharex=True, squeeze=False)
        for axis, (track, points) in zip(axes[:, 0], tracks):
            times = [t for t, _face in points]
            for emotion in EMOTIONS:
                axis.plot(times, [face.probabilities[emotion] for _t, face in points], label=emotion, marker=".",
                          markersize=3, linewidth=1)
            axis.set(ylabel="probability", ylim=(0, 1), title=f"track {track}: {len(points)} frame(s), "
                                                             f"mostly {track_summary(points)['dominant_emotion']}")
        if tracks:
            figure.legend(*axes[0, 0].get_legend_handles_labels(), ncol=7, fontsize=8, loc="upper center")
        else:
            axes[0, 0].set(title="no face found", ylim=(0, 1))
        axes[-1, 0].set(xlabel="time (s)")
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.35 / figure.get_figheight()))
        figure.savefig(path, dpi=120)
        plt.close(figure)


def track_summary(points: list[tuple[float, object]]) -> dict:
    """A track's span, frames, mean probabilities over all its frames, their dominant emotion, per-frame counts."""
    mean = {e: round(float(np.mean([face.probabilities[e] for _t, face in points])), 6) for e in EMOTIONS}
    return {"frames": len(points), "start_s": round(points[0][0], 3), "end_s": round(points[-1][0], 3),
            "dominant_emotion": max(mean, key=mean.get), "mean_probabilities": mean,
            "emotion_counts": dict(Counter(face.emotion for _t, face in points))}
