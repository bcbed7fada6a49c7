"""Emotion recognition on photos, folders and video, on torch or onnxruntime."""

from resdropnet.inference.recognizer import EmotionRecognizer, Face, ImagePrediction
from resdropnet.inference.video import FrameFaces, VideoAnalysis, VideoError

__all__ = ["EmotionRecognizer", "Face", "FrameFaces", "ImagePrediction", "VideoAnalysis", "VideoError"]
