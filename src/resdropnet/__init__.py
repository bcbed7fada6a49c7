"""resdropnet: facial expression recognition with ResDropNet, trained on FER2013."""

from resdropnet.labels import EMOTIONS, SPLITS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "SPLITS", "__version__"]
