"""resdropnet: facial expression recognition with ResDropNet, trained on FER2013.

`from resdropnet import EmotionRecognizer` works; the recognizer and its results are imported on first use, so
`import resdropnet` itself stays light (no OpenCV, onnxruntime or torch until they are needed).
"""

from resdropnet.labels import EMOTIONS, SPLITS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "SPLITS", "EmotionRecognizer", "Face", "ImagePrediction", "__version__"]

_LAZY = {"EmotionRecognizer", "Face", "ImagePrediction"}


def __getattr__(name: str):
    if name in _LAZY:
        from resdropnet import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'resdropnet' has no attribute {name!r}")
