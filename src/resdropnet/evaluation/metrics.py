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


def reliability_bins(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> list[dict]:
    """The non-empty top-1 confidence bins [low, high) of equal width (the last one holds 1.0): faces, mean
    confidence, accuracy. The ECE is the faces-weighted mean gap between confidence and accuracy over them, with
    torchmetrics' bin edges (it gives a confidence of exactly 1.0 a bin of its own)."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    which = torch.bucketize(confidence, edges[1:-1], right=True)  # bin i: edges[i] <= confidence < edges[i + 1]
    rows = []
    for i in range(bins):
        members = which == i
        if members.any():
            rows.append({"low": round(float(edges[i]), 6), "high": round(float(edges[i + 1]), 6),
                         "faces": int(members.sum()), "confidence": float(confidence[members].mean()),
                         "accuracy": float(correct[members].mean())})
    return rows


def classification_metrics(probabilities: torch.Tensor, labels, class_names=EMOTIONS, ece_bins: int = 15) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix (rows: true), ECE and its bins."""
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
        "calibration": reliability_bins(probabilities, labels, ece_bins),
    }


def paired_comparison(candidate_correct, reference_correct) -> dict:
    """Two models judged on the same faces (booleans, face by face): how many each got right, how many only one of
    them got right, and the exact McNemar p-value (two-sided binomial test on the faces where they disagree) of a
    difference that large arising from models that are equally good."""
    from scipy.stats import binomtest

    candidate, reference = (torch.as_tensor(c, dtype=torch.bool) for c in (candidate_correct, reference_correct))
    if candidate.shape != reference.shape or candidate.dim() != 1:
        raise ValueError(f"both models must be judged on the same faces, got {tuple(candidate.shape)} and {tuple(reference.shape)}")
    only_candidate, only_reference = int((candidate & ~reference).sum()), int((reference & ~candidate).sum())
    disagreements = only_candidate + only_reference
    return {"faces": len(candidate), "candidate_correct": int(candidate.sum()), "reference_correct": int(reference.sum()),
            "only_candidate": only_candidate, "only_reference": only_reference,
            "p_value": binomtest(only_candidate, disagreements).pvalue if disagreements else 1.0}


def paired_likelihood(candidate_logits, reference_logits, labels, candidate_temperature: float = 1.0,
                      reference_temperature: float = 1.0) -> dict:
    """Two models judged on the same faces by the log-probability each gives the true label, after its own
    temperature: the mean of each, how many faces each gives the higher one, and the two-sided Wilcoxon signed-rank
    p-value of the face-by-face differences. Every face counts, not only those where the predictions differ, so it
    tells a small loss from chance on fewer faces than the McNemar test can."""
    from scipy.stats import wilcoxon

    labels = torch.as_tensor(labels).long()

    def true_label_log_probability(logits, temperature: float) -> torch.Tensor:
        logits = torch.as_tensor(logits, dtype=torch.float64)
        if logits.shape != (len(labels), len(EMOTIONS)):
            raise ValueError(f"logits of shape {tuple(logits.shape)} for {len(labels)} faces of {len(EMOTIONS)} emotions")
        return torch.log_softmax(logits / temperature, dim=1).gather(1, labels[:, None]).squeeze(1)

    candidate = true_label_log_probability(candidate_logits, candidate_temperature)
    reference = true_label_log_probability(reference_logits, reference_temperature)
    difference = candidate - reference
    return {"faces": len(labels), "candidate": float(candidate.mean()), "reference": float(reference.mean()),
            "difference": float(difference.mean()), "candidate_higher": int((difference > 0).sum()),
            "reference_higher": int((difference < 0).sum()),
            "p_value": float(wilcoxon(difference.numpy()).pvalue) if difference.any() else 1.0}
