"""Classification metrics from probabilities, computed with torchmetrics."""

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from resdropnet.labels import EMOTIONS


def classification_metrics(probabilities: torch.Tensor, labels, class_names=EMOTIONS, ece_bins: int = 15) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix (rows: true) and ECE."""
    labels = torch.as_tensor(labels).long()
    n = len(class_names)
    per_class = {
        "precision": multiclass_precision(probabilities, labels, n, average=None),
        "recall": multiclass_recall(probabilities, labels, n, average=None),
        "f1": multiclass_f1_score(probabilities, labels, n, average=None),
    }
    return {
        "num_images": len(labels),
        "accuracy": float(multiclass_accuracy(probabilities, labels, n, average="micro")),
        "macro_f1": float(multiclass_f1_score(probabilities, labels, n, average="macro")),
        "ece": float(multiclass_calibration_error(probabilities, labels, n, n_bins=ece_bins, norm="l1")),
        "per_class": {
            name: {metric: float(values[i]) for metric, values in per_class.items()} | {"support": int((labels == i).sum())}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": multiclass_confusion_matrix(probabilities, labels, n).tolist(),
    }
