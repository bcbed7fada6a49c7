"""Emotion recognition on photos, folders and video, on torch or onnxruntime."""

from resdropnet.inference.recognizer import EmotionRecognizer, Face

__all__ = ["EmotionRecognizer", "Face"]
