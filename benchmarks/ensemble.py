"""Would these networks make a better ensemble? Each member alone and the members' mean probability, on PublicTest
(where an ensemble is chosen) and PrivateTest (reported only), without and with flip TTA; then the ensemble that
greedy forward selection builds on PublicTest alone, starting from the first member.

    python benchmarks/ensemble.py default runs/a/model.safetensors runs/b/model.safetensors --name ensemble_DATE

Members are shipped names or .safetensors paths (give them relative to the project, as the JSON records them).
The torch backend, in bf16 where the CPU has it natively (as the teacher pass of distillation runs), else fp32.
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import FER_ZIP, write_result  # noqa: E402

from resdropnet import data  # noqa: E402
from resdropnet.evaluation.report import SPLIT_ALIASES  # noqa: E402
from resdropnet.evaluation.tta import predict_probabilities  # noqa: E402
from resdropnet.system import bf16_where_native  # noqa: E402
from resdropnet.weights import load_model, read_metadata, resolve_weights  # noqa: E402

SPLITS, TTAS = ("public", "private"), ("none", "flip")


def member_probabilities(weights: list[str], fer, bf16: bool) -> dict:
    """{(member, split, tta): N x 7 probabilities}: every member runs once per split and TTA."""
    probabilities = {}
    for member in weights:
        model = load_model(member)
        for split in SPLITS:
            images, _ = fer.split(SPLIT_ALIASES[split])
            for tta in TTAS:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    probabilities[member, split, tta] = predict_probabilities(model, images, tta, progress=f"{member}, {split}, {tta}")
    return probabilities


def accuracies(members: list[str], probabilities: dict, labels: dict) -> dict:
    """{split: {tta: accuracy %}} of the members' mean probability."""
    def accuracy(split, tta):
        mean = torch.stack([probabilities[m, split, tta] for m in members]).mean(0)
        return round(100 * (mean.argmax(1) == labels[split]).float().mean().item(), 2)
    return {split: {tta: accuracy(split, tta) for tta in TTAS} for split in SPLITS}


def greedy_selection(weights: list[str], probabilities: dict, labels: dict) -> list[dict]:
    """Adds, one at a time, the member that most raises PublicTest accuracy (no TTA); stops when none raises it."""
    def step(members: list[str]) -> dict:
        return {"members": members, **accuracies(members, probabilities, labels)}

    steps, pool = [step(weights[:1])], list(weights[1:])
    while pool:
        best = max((step(steps[-1]["members"] + [m]) for m in pool), key=lambda s: s["public"]["none"])
        if best["public"]["none"] <= steps[-1]["public"]["none"]:
            break
        pool.remove(best["members"][-1])
        steps.append(best)
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+", help="members: shipped names or .safetensors paths")
    parser.add_argument("--data", default=str(FER_ZIP))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="ensemble")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fer = data.load(args.data)
    labels = {split: torch.as_tensor(fer.split(SPLIT_ALIASES[split])[1]).long() for split in SPLITS}
    bf16 = bf16_where_native("cpu")
    probabilities = member_probabilities(args.weights, fer, bf16)
    members = [{"weights": m, "model": read_metadata(resolve_weights(m)).get("model_name", ""),
                **accuracies([m], probabilities, labels)} for m in args.weights]
    write_result(args.name, {
        "command": "python benchmarks/ensemble.py " + " ".join(args.weights) + f" --name {args.name}",
        "precision": "bf16" if bf16 else "fp32",
        "members": members,
        "all_members": accuracies(args.weights, probabilities, labels),
        "greedy_on_public": greedy_selection(args.weights, probabilities, labels),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
