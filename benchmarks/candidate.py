"""Is a trained model an improvement on a shipped one? Both are judged face by face on the same faces.

    python benchmarks/candidate.py runs/NAME/model.safetensors --name NAME [--against fast]
    # writes benchmarks/results/candidates/NAME.json (FER2013 needed)

Both models run as they ship: int8 onnxruntime, no TTA. A .safetensors candidate (or an ensemble of them, given
comma-separated, as one graph) is exported and quantised as `resdropnet ship` does it, in a temporary folder; an
.int8.onnx file is taken as it is. The faces: PublicTest (which selects), PrivateTest (which reports), and the
labelled faces of the real-photo benchmark cropped two ways, at their hand-drawn boxes and as the default pipeline
finds them (CenterFace, aligned). For each set: the faces each model
got right, the faces only one of them got right, and the exact McNemar p-value; the mean log-probability each model
gives the true label after its own PublicTest temperature, with the Wilcoxon signed-rank p-value of the face-by-face
differences (every face counts, so it can tell a small loss from chance where the McNemar test cannot); and the
calibration (ECE) before and after that temperature. The verdict is the rule for shipping a model: more PublicTest faces
right, and no fewer real-photo faces right with either cropping.
"""

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from calibration import calibration, logits_of, real_photo_faces  # noqa: E402
from common import FER_ZIP, write_result  # noqa: E402
from realphotos import BENCHMARK, MIN_IOU, load_truth  # noqa: E402

from resdropnet import data  # noqa: E402
from resdropnet.evaluation.calibration import fit_temperature  # noqa: E402
from resdropnet.evaluation.metrics import paired_comparison, paired_likelihood  # noqa: E402
from resdropnet.evaluation.photos import match_detections  # noqa: E402
from resdropnet.export import calibration_faces, export_onnx, quantize_int8  # noqa: E402
from resdropnet.inference import EmotionRecognizer  # noqa: E402
from resdropnet.inference.backends import onnx_path_for  # noqa: E402
from resdropnet.labels import EMOTIONS  # noqa: E402
from resdropnet.models.complexity import count_macs  # noqa: E402
from resdropnet.weights import load_model  # noqa: E402

REAL_PHOTO_SETS = ("real_photos_hand_boxes", "real_photos_pipeline")


def pipeline_faces(cropper: EmotionRecognizer) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The labelled real-photo faces the detector finds (IoU >= MIN_IOU), cropped as predict() crops them, and
    their names ("photo.jpg #k": the k-th face of the photo's truth)."""
    crops, labels, names = [], [], []
    for name, truth in load_truth().items():
        counted = [(k, face) for k, face in enumerate(truth) if not face.get("ignore")]
        found, photo_crops = cropper.detect_and_crop(cv2.imread(str(BENCHMARK / "images" / name)))
        for i, j in match_detections([face["box"] for _k, face in counted], [box.to_list() for box in found], MIN_IOU):
            k, face = counted[i]
            if "emotion" in face:
                crops.append(photo_crops[j])
                labels.append(EMOTIONS.index(face["emotion"]))
                names.append(f"{name} #{k}")
    return np.stack(crops), np.array(labels), names


def face_sets(fer, cropper: EmotionRecognizer) -> tuple[dict[str, tuple[np.ndarray, torch.Tensor]], dict[str, list[str]]]:
    """The faces and labels of every set, and the names of the real-photo faces."""
    hand_crops, hand_labels, hand_names = real_photo_faces(cropper)
    pipeline_crops, pipeline_labels, pipeline_names = pipeline_faces(cropper)
    sets = {"public_test": fer.split("val"), "private_test": fer.split("test"),
            "real_photos_hand_boxes": (hand_crops, hand_labels), "real_photos_pipeline": (pipeline_crops, pipeline_labels)}
    return ({name: (images, torch.as_tensor(labels).long()) for name, (images, labels) in sets.items()},
            {"real_photos_hand_boxes": hand_names, "real_photos_pipeline": pipeline_names})


def int8_model(weights: str, fer, folder: Path) -> Path:
    """weights as they would ship in int8: a shipped model's own file, an .int8.onnx as it is, or .safetensors
    (comma-separated: an ensemble, one graph) exported and quantised on the calibration faces `resdropnet ship` uses."""
    if "," not in weights and not weights.endswith(".safetensors"):
        return onnx_path_for(weights, int8=True)
    export_onnx(weights, folder / "model.onnx")
    return quantize_int8(folder / "model.onnx", folder / "model.int8.onnx", calibration_faces(fer))


def macs(weights: str) -> int | None:
    """Multiply-accumulates a face, summed over an ensemble's members; None for an ONNX file (no torch model)."""
    if weights.endswith(".onnx"):
        return None
    return sum(count_macs(load_model(name)) for name in weights.split(","))


def judged(int8_path: Path, sets: dict) -> tuple[dict, dict]:
    """The logits of every face of every set, and the temperature fit on PublicTest with the calibration before and
    after it."""
    recognizer = EmotionRecognizer(str(int8_path), threads=2)
    logits = {name: logits_of(recognizer, images) for name, (images, _labels) in sets.items()}
    temperature = fit_temperature(logits["public_test"], sets["public_test"][1])
    return logits, {"temperature": temperature} | {
        name: calibration(logits[name], labels, temperature) for name, (_images, labels) in sets.items() if name != "public_test"}


def disagreements(names: list[str], labels, candidate, reference) -> list[dict]:
    """The faces exactly one of the two models got right: name, label and both predictions."""
    return [{"face": name, "label": EMOTIONS[label], "candidate": EMOTIONS[c], "reference": EMOTIONS[r]}
            for name, label, c, r in zip(names, labels.tolist(), candidate.tolist(), reference.tolist())
            if (c == label) != (r == label)]


def by_emotion(candidate_correct, reference_correct, labels) -> dict:
    """Per labelled emotion: faces, and how many of them each model got right (where a difference comes from)."""
    return {emotion: {"faces": int((labels == i).sum()), "candidate_correct": int(candidate_correct[labels == i].sum()),
                      "reference_correct": int(reference_correct[labels == i].sum())}
            for i, emotion in enumerate(EMOTIONS) if (labels == i).any()}


def likelihood_by_emotion(candidate_logits, reference_logits, labels, temperatures: dict) -> dict:
    """The paired true-label likelihood over all faces, and per labelled emotion (which faces a difference comes from)."""
    def compared(faces) -> dict:
        return paired_likelihood(candidate_logits[faces], reference_logits[faces], labels[faces],
                                 temperatures["candidate"], temperatures["reference"])

    return compared(slice(None)) | {"by_emotion": {emotion: compared(labels == i) for i, emotion in enumerate(EMOTIONS)
                                                   if (labels == i).any()}}


def verdict(comparisons: dict) -> dict:
    public = comparisons["public_test"]
    losses = [name for name in REAL_PHOTO_SETS if comparisons[name]["candidate_correct"] < comparisons[name]["reference_correct"]]
    gains = public["candidate_correct"] > public["reference_correct"]
    return {"gains_on_public_test": gains, "loses_on_real_photos": losses, "improvement": gains and not losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidate", help="a .safetensors file or comma-separated ones (an ensemble), exported and "
                        "quantised here; or an .int8.onnx file")
    parser.add_argument("--name", required=True, help="the record's name: benchmarks/results/candidates/NAME.json")
    parser.add_argument("--against", default="fast", help="the shipped model (or .int8.onnx file) to beat")
    parser.add_argument("--data", type=Path, default=FER_ZIP, help="FER2013: PublicTest, PrivateTest, int8 calibration faces")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: FER2013 is needed for PublicTest, PrivateTest and the int8 calibration faces")
    fer = data.load(args.data)
    sets, face_names = face_sets(fer, EmotionRecognizer(args.against, threads=2))
    with tempfile.TemporaryDirectory() as folder:
        paths = {"candidate": int8_model(args.candidate, fer, Path(folder)), "reference": onnx_path_for(args.against, int8=True)}
        results = {role: judged(path, sets) for role, path in paths.items()}
        digests = {role: hashlib.sha256(path.read_bytes()).hexdigest() for role, path in paths.items()}
    logits, calibrations = ({role: result[i] for role, result in results.items()} for i in (0, 1))
    temperatures = {role: calibration["temperature"] for role, calibration in calibrations.items()}
    predicted = {role: {name: role_logits[name].argmax(1) for name in sets} for role, role_logits in logits.items()}
    labels = {name: labels for name, (_images, labels) in sets.items()}
    correct = {role: {name: predicted[role][name] == labels[name] for name in sets} for role in predicted}
    comparisons = {name: paired_comparison(correct["candidate"][name], correct["reference"][name])
                   | {"by_emotion": by_emotion(correct["candidate"][name], correct["reference"][name], labels[name]),
                      "true_label_log_probability": likelihood_by_emotion(
                          logits["candidate"][name], logits["reference"][name], labels[name], temperatures)}
                   for name in sets}
    for name, names in face_names.items():
        comparisons[name]["disagreements"] = disagreements(names, labels[name], predicted["candidate"][name],
                                                           predicted["reference"][name])
    record = {"candidate": {"name": args.name, "int8_sha256": digests["candidate"], "macs": macs(args.candidate)},
              "reference": {"name": args.against, "int8_sha256": digests["reference"], "macs": macs(args.against)},
              "backend": "onnx-int8", "tta": "none", "sets": comparisons,
              "calibration": calibrations, "verdict": verdict(comparisons)}
    for name, c in comparisons.items():
        likelihood = c["true_label_log_probability"]
        print(f"{name:24s} {c['faces']:5d} faces: {args.name} {c['candidate_correct']}, {args.against} {c['reference_correct']} "
              f"(only one right: {c['only_candidate']} / {c['only_reference']}, McNemar p = {c['p_value']:.3f}); "
              f"log-probability of the true label {likelihood['difference']:+.4f} a face (Wilcoxon p = {likelihood['p_value']:.3f})")
    print(f"verdict: {record['verdict']}")
    write_result(f"candidates/{args.name}", record)


if __name__ == "__main__":
    main()
