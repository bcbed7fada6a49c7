"""Ships a finished run as the package's default model: weights, report, confusion matrix and model card."""

import json
import shutil
from pathlib import Path

from resdropnet.evaluation.report import report_markdown
from resdropnet.export import export_onnx
from resdropnet.system import machine_description
from resdropnet.weights import DEFAULT_ONNX, DEFAULT_WEIGHTS, PACKAGE_WEIGHTS

LIMITS = """\
- FER2013 faces were found by Google image search and labelled once each; roughly one label in
  ten is wrong or ambiguous, which caps every model's accuracy (human accuracy is about 65%).
- Classes are imbalanced: disgust has 436 training images against 7,215 for happy; its recall is
  the weakest and its figures rest on 55 PrivateTest images.
- The faces are mostly frontal, 48x48 grayscale, of adults from web photos; the set's make-up by
  age, skin tone and culture is undocumented, so accuracy on under-represented groups is unknown.
- Posed or exaggerated expressions dominate; subtle, spontaneous or mixed expressions and
  non-Western display rules are poorly covered.
- A facial expression is not an emotion: the model labels appearance, not what a person feels.
  Do not use it to make decisions about people."""


def model_card(report: dict, command: str, machine: str) -> str:
    cfg, timing = report["config"], report["timing"]
    return "\n".join([
        f"# Model card: {report['model']} (resdropnet default weights)",
        "",
        "## Data",
        "FER2013 only (35,887 48x48 grayscale faces, 7 emotions). Trained on Training (28,709), every choice",
        "(epoch, checkpoint, recipe) made on PublicTest (3,589), PrivateTest (3,589) used only to report.",
        "No outside data, no outside weights.",
        "",
        "## Reproduce",
        f"```\n{command}\n```",
        f"Seed {cfg['seed']}. Resolved recipe:",
        f"```json\n{json.dumps(cfg, indent=2)}\n```",
        "",
        "## Training",
        f"{timing['epochs']} epochs, {timing['train_wall_seconds'] / 60:.1f} min of training wall-clock "
        f"({timing['precision']}) on {machine}; best PublicTest epoch: {report['best_epoch'] + 1}.",
        "",
        "## Metrics",
        report_markdown(report).split("\n", 2)[2],
        "## Calibration",
        f"Expected calibration error (15 bins) on PrivateTest: {report['test']['none']['ece']:.4f} without TTA, "
        f"{report['test']['tencrop']['ece']:.4f} with ten-crop.",
        "",
        "## Files",
        "`resdropnet_default.safetensors` (weights, config in its metadata) and `resdropnet_default.onnx` (the same",
        f"network for onnxruntime; largest logit difference from torch on 64 random faces: {report.get('onnx_max_abs_difference', float('nan')):.1e}).",
        "",
        "## Known limits and biases",
        LIMITS,
        "",
    ])


def ship(run_dir: str | Path, command: str) -> Path:
    """Copies run_dir's weights (and an ONNX export of them) and report into the package; writes MODEL_CARD.md."""
    run_dir = Path(run_dir)
    report = json.loads((run_dir / "report.json").read_text())
    PACKAGE_WEIGHTS.mkdir(exist_ok=True)
    shutil.copyfile(run_dir / "model.safetensors", DEFAULT_WEIGHTS)
    export = export_onnx(DEFAULT_WEIGHTS, DEFAULT_ONNX)
    shutil.copyfile(run_dir / "confusion_matrix.png", PACKAGE_WEIGHTS / "confusion_matrix.png")
    if (run_dir / "training_curves.png").exists():
        shutil.copyfile(run_dir / "training_curves.png", PACKAGE_WEIGHTS / "training_curves.png")
    report = {**report, "best_checkpoint": Path(report["best_checkpoint"]).name, "reproduce": command,
              "onnx_max_abs_difference": export["max_abs_difference"]}
    (PACKAGE_WEIGHTS / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (PACKAGE_WEIGHTS / "MODEL_CARD.md").write_text(model_card(report, command, machine_description()))
    return DEFAULT_WEIGHTS
