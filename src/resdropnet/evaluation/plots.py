"""PNG plots for reports: the confusion matrix, the reliability diagram, the training curves and the ablation."""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from resdropnet.labels import EMOTIONS  # noqa: E402


def plot_confusion_matrix(matrix, path: str | Path, title: str = "Confusion matrix", class_names=EMOTIONS) -> Path:
    """Row-normalised confusion matrix with counts, rows the true class."""
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{rates[i, j]:.2f}\n({count})", ha="center", va="center", fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_reliability(bins: list[dict], path: str | Path, title: str = "Reliability diagram") -> Path:
    """Accuracy against top-1 confidence per bin (metrics.reliability_bins), the diagonal being perfect calibration;
    below, how many faces fall in each bin."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    lows = [b["low"] for b in bins]
    widths = [b["high"] - b["low"] for b in bins]
    top.bar(lows, [b["accuracy"] for b in bins], widths, align="edge", color="#2878c8", edgecolor="white", label="accuracy")
    top.plot([b["confidence"] for b in bins], [b["confidence"] for b in bins], "o", color="#e63c3c", ms=4,
             label="mean confidence")
    top.plot([0, 1], [0, 1], "--", color="gray", lw=1, label="perfect calibration")
    top.set(ylabel="accuracy", ylim=(0, 1), title=title)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(lows, [b["faces"] for b in bins], widths, align="edge", color="#aaaaaa", edgecolor="white")
    bottom.set(xlabel="top-1 confidence", ylabel="faces", xlim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def read_epoch_metrics(logs: Path) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch series from Lightning's CSV logs (resumed parts first): name -> [(epoch, value)]."""
    series: dict[str, list[tuple[int, float]]] = {}
    for metrics_csv in [*sorted(logs.glob("metrics.part*.csv")), logs / "metrics.csv"]:
        if not metrics_csv.exists():
            continue
        with open(metrics_csv, newline="") as handle:
            for row in csv.DictReader(handle):
                if not row.get("epoch"):
                    continue
                for name, value in row.items():
                    if value not in ("", None) and name not in ("epoch", "step") and not name.endswith("_step"):
                        series.setdefault(name, []).append((int(row["epoch"]), float(value)))
    return series


def plot_training_curves(logs: Path, path: str | Path) -> Path:
    series = read_epoch_metrics(logs)
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name, ax in (("train_loss_epoch", loss_ax), ("val_loss", loss_ax), ("train_acc", acc_ax), ("val_acc", acc_ax)):
        if name in series:
            epochs, values = zip(*series[name])
            ax.plot(np.array(epochs) + 1, values, marker="o", markersize=3, label=name.replace("_epoch", ""))
    loss_ax.set_title("loss")
    acc_ax.set_title("accuracy (val = PublicTest)")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_ablation(results: dict, path: str | Path, tta: str) -> Path:
    """Each variant's accuracy seed by seed (dots) and its mean ± std over seeds (square and bar), PublicTest beside
    PrivateTest, with the mean of each model's no-dropout run as a dashed line: results as ablation.summarise_runs gives."""
    labels = list(results)
    fig, axes = plt.subplots(1, 2, figsize=(10, 1.5 + 0.45 * len(labels)), sharey=True)
    for ax, (split, title) in zip(axes, (("public_test", "PublicTest"), ("private_test", "PrivateTest"))):
        for row, label in enumerate(labels):
            summary = results[label][split][tta]
            ax.plot([v * 100 for v in summary["values"]], [row] * len(summary["values"]), "o", color="#e63c3c",
                    alpha=0.7, ms=5, zorder=3, label="one seed" if row == 0 else None)
            ax.errorbar(summary["mean"] * 100, row, xerr=summary["std"] * 100, fmt="s", color="#2878c8", capsize=4,
                        label="mean ± std" if row == 0 else None)
            if label.endswith(" none"):
                ax.axvline(summary["mean"] * 100, ls="--", color="gray", lw=1)
        ax.set(title=f"{title}, TTA {tta}", xlabel="accuracy (%)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
