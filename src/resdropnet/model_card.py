"""Ships a finished run as one of the package's models: weights, ONNX (fp32 and int8), report, plots and model card."""

import json
import shutil
from itertools import groupby
from pathlib import Path

from resdropnet.data import loaded
from resdropnet.evaluation.report import evaluate_deployed, metrics_by_tta, plot_calibration, report_markdown
from resdropnet.evaluation.tta import TTA_MODES
from resdropnet.export import calibration_faces, export_onnx, quantize_int8
from resdropnet.labels import EMOTIONS
from resdropnet.system import machine_description, machine_info
from resdropnet.weights import load_model, shipped_folder

LIMITS = """\
- FER2013 faces were found by Google image search and labelled once each; roughly one label in
  ten is wrong or ambiguous, which caps every model's accuracy (human accuracy is about 65%).
{classes}
- The faces are mostly frontal, 48x48 grayscale, of adults from web photos; the set's make-up by
  age, skin tone and culture is undocumented, so accuracy on under-represented groups is unknown.
- Posed or exaggerated expressions dominate; subtle, spontaneous or mixed expressions and
  non-Western display rules are poorly covered.
- A facial expression is not an emotion: the model labels appearance, not what a person feels.
  Do not use it to make decisions about people."""


PLOTS = ("confusion_matrix.png", "training_curves.png")  # copied from the run; calibration.png is drawn


def calibration_section(test: dict) -> list[str]:
    """ECE per TTA, then (for reports that hold them) the reliability diagram and its bins, without TTA."""
    lines = ["Expected calibration error (15 bins) on PrivateTest: "
             + ", ".join(f"{m['ece']:.4f} with TTA {tta}" for tta, m in test.items()) + "."]
    bins = test["none"].get("calibration")
    if bins:
        lines += ["", "![reliability diagram](calibration.png)", "",
                  "| top-1 confidence | faces | mean confidence | accuracy |", "|---|---|---|---|"]
        lines += [f"| {b['low']:.2f}-{b['high']:.2f} | {b['faces']} | {b['confidence']:.3f} | {b['accuracy']:.3f} |"
                  for b in bins]
        counted = [b for b in bins if b["faces"] >= 30] or bins  # a handful of faces says little
        over = max(counted, key=lambda b: b["confidence"] - b["accuracy"])
        under = max(counted, key=lambda b: b["accuracy"] - b["confidence"])
        lines += ["", f"Of the bins of 30 faces or more, the most overconfident is {over['low']:.2f}-{over['high']:.2f} "
                  f"(accuracy {100 * (over['confidence'] - over['accuracy']):.1f} points below confidence), the most "
                  f"underconfident {under['low']:.2f}-{under['high']:.2f} "
                  f"({100 * (under['accuracy'] - under['confidence']):.1f} points above)."]
    return lines


def class_limits(test: dict) -> str:
    """The imbalance bullet, with this model's own weakest class and its commonest confusion (rows: true class)."""
    per_class, confusion = test["per_class"], test["confusion_matrix"]
    weakest = min(EMOTIONS, key=lambda name: per_class[name]["recall"])
    row = confusion[EMOTIONS.index(weakest)]
    mistaken = max((n for n in EMOTIONS if n != weakest), key=lambda n: row[EMOTIONS.index(n)])
    disgust = per_class["disgust"]
    return (f"- Classes are imbalanced: disgust has 436 training images against 7,215 for happy; its PrivateTest\n"
            f"  recall ({disgust['recall']:.1%}) rests on {disgust['support']} faces. This model's weakest class is "
            f"{weakest} (recall {per_class[weakest]['recall']:.1%}),\n"
            f"  most often taken for {mistaken} ({row[EMOTIONS.index(mistaken)] / sum(row):.1%} of its faces).")


def measured_on(int8: dict) -> str:
    machine = int8.get("measured_on")
    return f", measured on {machine_description(machine)}" if machine else ""


def training_machine(timing: dict) -> str:
    """Where a run trained, from its wall-clock segments (the run may have trained elsewhere than it ships from)."""
    machines = [machine for machine, _ in groupby(segment["machine"] for segment in timing.get("segments", []))]
    return " then ".join(machines) if machines else machine_description()


def teacher_name(teacher: str) -> str:
    """A run's weights by the run's name (the folder it lay in when the student trained means nothing here)."""
    path = Path(teacher)
    return f"run `{path.parent.name}`" if path.name == "model.safetensors" and path.parent.name else f"`{teacher}`"


PATH_FIELDS = ("data", "out", "teacher", "init")


def portable_path(path: str) -> str:
    """A path as the card may show it: a run folder from its runs/ on, any other absolute path by its name alone
    (where a run lay on the machine that trained it means nothing elsewhere)."""
    if not Path(path).is_absolute():
        return path
    return "runs/" + path.rsplit("/runs/", 1)[1] if "/runs/" in path else Path(path).name


def portable_config(cfg: dict) -> dict:
    """The recorded recipe with every path field made portable (comma-separated lists path by path)."""
    return {key: ",".join(map(portable_path, value.split(","))) if key in PATH_FIELDS and isinstance(value, str) and value
            else value for key, value in cfg.items()}


def teacher_source(teacher: str) -> str:
    """The teacher of a distillation in words: 'the teacher run `x`' or 'the ensemble of 3 teachers ...'."""
    teachers = teacher.split(",")
    named = ", ".join(map(teacher_name, teachers))
    return f"the teacher {named}" if len(teachers) == 1 else f"the ensemble of {len(teachers)} teachers {named}"


def distillation_sentence(cfg: dict, targets: dict | None = None) -> str:
    """targets: the report's teacher_targets where the student read a targets file instead of running the teacher."""
    source = targets["teacher"] if targets else teacher_source(cfg["teacher"])
    whose = "their averaged" if source.startswith("the ensemble") else "its"
    read = f", read from the targets file `{targets['file']}`" if targets else ""
    return (f" Distilled from {source} ({whose} flip-averaged outputs on the training faces{read}; distill_weight "
            f"{cfg['distill_weight']}, temperature {cfg['distill_temperature']}), whose own training these figures do "
            "not count.")


def model_card(report: dict, command: str, machine: str, name: str = "default") -> str:
    cfg, timing = report["config"], report["timing"]
    int8 = report.get("onnx_int8", {})
    return "\n".join([
        f"# Model card: {report['model']} (resdropnet's shipped {name!r} weights)",
        "",
        "## Data",
        "FER2013 only (35,887 48x48 grayscale faces, 7 emotions). Trained on Training (28,709), every choice",
        "(epoch, checkpoint, recipe) made on PublicTest (3,589), PrivateTest (3,589) used only to report.",
        "No outside data, no outside weights." + (f" {report['selection']}" if report.get("selection") else ""),
        "",
        "## Reproduce",
        f"```\n{command}\n```",
        f"Seed {cfg['seed']}. Resolved recipe:",
        f"```json\n{json.dumps(cfg, indent=2)}\n```",
        "",
        "## Training",
        f"{timing['epochs']} epochs, {timing['train_wall_seconds'] / 60:.1f} min of training wall-clock "
        f"({timing['precision']}) on {machine}; best PublicTest epoch: {report['best_epoch'] + 1}."
        + (f" Fine-tuned from `{cfg['init']}`, whose own training these figures do not count." if cfg.get("init") else "")
        + (distillation_sentence(cfg, report.get("teacher_targets")) if cfg.get("teacher") else ""),
        "",
        "## Metrics",
        report_markdown(report).split("\n", 2)[2],
        "## Calibration",
        *calibration_section(report["test"]),
        "",
        "## Files",
        "`model.safetensors` (weights, config in its metadata); `model.onnx`, the same network for onnxruntime",
        f"(largest logit difference from torch on 64 random faces: {report.get('onnx_max_abs_difference', float('nan')):.1e});",
        "`model.int8.onnx`, int8-quantised (static, per-channel 7-bit weights, calibrated on 1,024 Training faces; "
        f"`backend=\"onnx-int8\"`): PublicTest {int8.get('val_accuracy', float('nan')):.2%}, "
        f"PrivateTest {int8.get('test_accuracy', float('nan')):.2%} without TTA"
        + (f"; with flip TTA PublicTest {int8['val_accuracy_flip']:.2%}, PrivateTest {int8['test_accuracy_flip']:.2%}"
           if "test_accuracy_flip" in int8 else "")
        + f"{measured_on(int8)}.",
        "",
        "## Known limits and biases",
        LIMITS.format(classes=class_limits(report["test"]["none"])),
        "",
    ])


def ship(run_dir: str | Path, command: str, name: str = "default", data: str | Path | None = None) -> Path:
    """Copies run_dir's weights, their ONNX exports (fp32, int8) and report into the package's folder for name.

    data: the FER2013 source that calibrates and measures the int8 copy; by default the run's own.
    """
    run_dir, folder = Path(run_dir), shipped_folder(name)
    report = json.loads((run_dir / "report.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.safetensors"
    shutil.copyfile(run_dir / "model.safetensors", weights)
    export = export_onnx(weights, folder / "model.onnx")
    for plot in PLOTS:  # the run's plots replace the last model's; none of the last model's may stay behind
        if (run_dir / plot).exists():
            shutil.copyfile(run_dir / plot, folder / plot)
        else:
            (folder / plot).unlink(missing_ok=True)
    if report["test"]["none"].get("calibration"):  # drawn from the report: runs from before the bins have none
        plot_calibration(report, folder / "calibration.png")
    else:
        (folder / "calibration.png").unlink(missing_ok=True)
    source = data or report["config"]["data"]
    report = {**report, "config": portable_config(report["config"]), "best_checkpoint": Path(report["best_checkpoint"]).name,
              "reproduce": command, "machine": training_machine(report["timing"]),
              "onnx_max_abs_difference": export["max_abs_difference"]}
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    quantize_shipped(name, source)
    return weights


def quantize_shipped(name: str, source) -> dict:
    """(Re)makes a shipped model's model.int8.onnx from its model.onnx, measures it and updates its report and card."""
    folder, arrays = shipped_folder(name), loaded(source)
    quantize_int8(folder / "model.onnx", folder / "model.int8.onnx", calibration_faces(arrays))
    return measure_int8(name, arrays)


def measure_int8(name: str, source) -> dict:
    """A shipped model's int8 copy on both test splits, without TTA and with flip, into its report and card."""
    folder = shipped_folder(name)
    report = json.loads((folder / "report.json").read_text())
    weights, arrays = folder / "model.safetensors", loaded(source)
    int8 = {}
    for split in ("val", "test"):
        int8[f"{split}_accuracy"] = evaluate_deployed(weights, arrays, split, "onnx-int8")["accuracy"]
        int8[f"{split}_accuracy_flip"] = evaluate_deployed(weights, arrays, split, "onnx-int8", tta="flip")["accuracy"]
    report["onnx_int8"] = {**int8, "measured_on": machine_info()}
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_card(name)
    return report["onnx_int8"]


def measure_missing_tta(name: str, source) -> list[str]:
    """A shipped model (torch, fp32) on each test split with the TTA modes that split's report lacks (modes added
    after it shipped), into its report and card; the figures already there stay as they are. Returns the modes added."""
    folder = shipped_folder(name)
    report = json.loads((folder / "report.json").read_text())
    missing = {split: [tta for tta in TTA_MODES if tta not in report[split]] for split in ("val", "test")}
    if not any(missing.values()):
        return []
    model, arrays = load_model(folder / "model.safetensors"), loaded(source)
    for split, modes in missing.items():
        images, labels = arrays.split(split)
        report[split].update(metrics_by_tta(model, images, labels, modes, f"{name}: {split}"))
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_card(name)
    return [tta for tta in TTA_MODES if any(tta in modes for modes in missing.values())]


def write_card(name: str) -> Path:
    """(Re)writes a shipped model's MODEL_CARD.md from its report.json."""
    folder = shipped_folder(name)
    report = json.loads((folder / "report.json").read_text())
    card = folder / "MODEL_CARD.md"
    card.write_text(model_card(report, report["reproduce"], report["machine"], name))
    return card
