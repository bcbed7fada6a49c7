"""Evaluation of weights on a split, and the end-of-run report."""

import json
import time
from pathlib import Path

import torch

from resdropnet import data
from resdropnet.evaluation.metrics import classification_metrics
from resdropnet.evaluation.plots import plot_confusion_matrix, plot_reliability, plot_training_curves
from resdropnet.evaluation.tta import TTA_MODES, predict_probabilities
from resdropnet.labels import EMOTIONS

SPLIT_ALIASES = {"private": "test", "public": "val", "train": "train", "test": "test", "val": "val"}


def evaluate_model(model, images, labels, tta: str = "none", progress: str = "") -> dict:
    metrics = classification_metrics(predict_probabilities(model, images, tta, progress=progress), labels)
    return {"tta": tta, **metrics}


def metrics_by_tta(model, images, labels, tta_modes, label: str) -> dict:
    """{tta: metrics} of model on one split for each mode; label names the split in the progress bars."""
    return {tta: evaluate_model(model, images, labels, tta, progress=f"{label}, TTA {tta}") for tta in tta_modes}


def evaluate_split(model, source, split: str, tta: str = "none") -> dict:
    """Metrics of model on one split ('private'/'test', 'public'/'val', 'train') of a FER2013 source."""
    split_name = SPLIT_ALIASES[split]
    images, labels = data.load(source).split(split_name)
    return {"split": split_name, **evaluate_model(model, images, labels, tta, progress=f"{split_name}, TTA {tta}")}


def evaluate_deployed(weights, source, split: str, backend: str, tta: str = "none") -> dict:
    """Metrics of weights as EmotionRecognizer runs them (e.g. onnxruntime int8) on one split of source (any FER2013
    source data.load reads, or its already loaded FerArrays)."""
    from resdropnet.inference import EmotionRecognizer

    if tta not in ("none", "flip"):
        raise ValueError(f"TTA {tta!r} runs on the torch backend only; backend {backend!r} takes none or flip")
    split_name = SPLIT_ALIASES[split]
    images, labels = data.loaded(source).split(split_name)
    recognizer = EmotionRecognizer(weights, detector="none", backend=backend, tta=tta)
    probabilities = torch.from_numpy(recognizer.classify_faces(images))
    return {"split": split_name, "tta": tta, "backend": recognizer.backend.name, **classification_metrics(probabilities, labels)}


def model_from_checkpoint(checkpoint_path: str | Path):
    """The (EMA-averaged where used) network of a Lightning checkpoint, in eval mode."""
    from resdropnet.training.checkpoints import read_checkpoint
    from resdropnet.training.module import EmotionClassifier

    checkpoint = read_checkpoint(checkpoint_path)
    module = EmotionClassifier(checkpoint["hyper_parameters"]["config"])
    module.load_state_dict(checkpoint["state_dict"])
    return module.model.float().to(memory_format=torch.contiguous_format).eval(), checkpoint


def metrics_table(report: dict) -> str:
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name in EMOTIONS:
        row = report["per_class"][name]
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    return "\n".join(lines)


def finish_run(out: Path, best_checkpoint: str, datamodule, timing: dict, tta_modes=TTA_MODES,
               device: torch.device | str = "cpu") -> dict:
    """Exports the best checkpoint's weights and writes report.json, report.md, benchmark.json and plots into out.

    device: where the report's predictions run, the training device: on a GPU machine's single CPU thread
    per process, a ten-crop report would take minutes.
    """
    from resdropnet.weights import save_model

    model, checkpoint = model_from_checkpoint(best_checkpoint)
    model.to(device)
    config = checkpoint["hyper_parameters"]["config"]
    splits = {}
    for split in ("val", "test"):
        images, labels = datamodule.tensors[split].tensors
        splits[split] = metrics_by_tta(model, images, labels, tta_modes, f"report: {split}")
    report = {
        "model": config["model"],
        "best_checkpoint": str(best_checkpoint),
        "best_epoch": int(checkpoint["epoch"]),
        "config": config,
        "timing": timing,
        "val": splits["val"],
        "test": splits["test"],
    }
    if datamodule.teacher_targets:
        report["teacher_targets"] = datamodule.teacher_targets
    save_model(model, out / "model.safetensors", {
        "model_name": config["model"],
        "val_accuracy": splits["val"]["none"]["accuracy"],
        "test_accuracy": splits["test"]["none"]["accuracy"],
        "test_accuracy_tta": {tta: m["accuracy"] for tta, m in splits["test"].items()},
    })
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_confusion_matrix(splits["test"]["none"]["confusion_matrix"], out / "confusion_matrix.png",
                          title=f"{config['model']} on PrivateTest")
    plot_calibration(report, out / "calibration.png")
    if (out / "logs").is_dir():
        plot_training_curves(out / "logs", out / "training_curves.png")
    (out / "report.md").write_text(report_markdown(report))
    (out / "benchmark.json").write_text(json.dumps(run_benchmark(report), indent=2) + "\n")
    return report


def plot_calibration(report: dict, path: Path) -> Path:
    """The reliability diagram of a run's report: PrivateTest without TTA."""
    return plot_reliability(report["test"]["none"]["calibration"], path, title=f"{report['model']} on PrivateTest, no TTA")


def run_benchmark(report: dict) -> dict:
    """Time and accuracy of a finished run, with the machine: the record of how fast a recipe gets where."""
    from resdropnet.system import machine_info

    return {
        "benchmark": "training_run",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_info(),
        "model": report["model"],
        "config": report["config"],
        "epochs": report["timing"]["epochs"],
        "best_epoch": report["best_epoch"] + 1,
        "train_wall_seconds": report["timing"]["train_wall_seconds"],
        "precision": report["timing"]["precision"],
        "segments": report["timing"].get("segments", []),
        "public_test_accuracy": {tta: m["accuracy"] for tta, m in report["val"].items()},
        "private_test_accuracy": {tta: m["accuracy"] for tta, m in report["test"].items()},
    }


def report_markdown(report: dict) -> str:
    rows = ["| split | TTA | accuracy | macro-F1 | ECE |", "|---|---|---|---|---|"]
    for split, label in (("val", "PublicTest"), ("test", "PrivateTest")):
        for tta, m in report[split].items():
            rows.append(f"| {label} | {tta} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['ece']:.4f} |")
    return "\n".join([
        f"# Report: {report['model']}",
        "",
        f"Best checkpoint (by PublicTest accuracy): epoch {report['best_epoch'] + 1}.",
        "",
        *rows,
        "",
        "## PrivateTest per class (no TTA)",
        "",
        metrics_table(report["test"]["none"]),
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "![training curves](training_curves.png)",
        "",
    ])
