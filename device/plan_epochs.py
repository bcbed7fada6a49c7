"""The accurate recipe's variants for jobs.sh, and how many epochs each gets in its time limit.

Each variant runs in a process of its own, and one process goes no faster than the probe's lone process
at the variant's batch size, however idle the GPU: epochs = that rate x EFFICIENCY (Lightning's loop,
validation and checkpoints, which the probe's bare steps lack) x the seconds left for training. Pending
ablation runs (batch 128, 24 epochs each) share the GPU first: the images left to the variants are
then the probe's four-process throughput (the GPU's aggregate at batch 128) over the same seconds,
less the ablation's. Prints one line per variant, tab-separated, for jobs.sh: name, epochs, flags.

    python3 device/plan_epochs.py --probes DIR --limit 560 --pending 0 --variants "accurate_b512 accurate"

Measured on an H200 (2026-11-26, batch 128): planned 48 epochs beside five ablation runs; they took
390 s of the 395 planned.
"""

import argparse
import json
import sys
from pathlib import Path

TRAIN_IMAGES = 28709
ABLATION_EPOCHS = 24
EFFICIENCY = 0.55
STARTUP_SECONDS = 105  # imports, CUDA start and the final evaluation, plus max_time's 60 s margin
MAX_EPOCHS = 200
# Batch 512 takes the square-root rule for AdamW's peak rate (0.002 at 128). On the H200 a step of
# resdropnet_s at batch 128 is bound by kernel launches, not arithmetic (resdropnet_m, 4x the FLOPs,
# ran as fast), so a 4x batch should nearly quadruple one process's images/s; probe.sh measures it.
VARIANTS = {
    "accurate": ("", 128),
    "accurate_cutmix": ("--mix cutmix", 128),
    "accurate_mixup": ("--mix mixup", 128),
    "accurate_seed1": ("--seed 1", 128),
    "accurate_b512": ("--batch-size 512 --lr 0.004", 512),
    "accurate_b512_mixup": ("--batch-size 512 --lr 0.004 --mix mixup", 512),
    "accurate_b512_cutmix": ("--batch-size 512 --lr 0.004 --mix cutmix", 512),
}


def lone_rates(probes: Path) -> dict[int, float]:
    """Batch size -> bf16 training images/s of one resdropnet_s process, from probe.sh's lone runs."""
    rates = {}
    for path in sorted(probes.glob("train_throughput_cuda*.json")):
        result = json.loads(path.read_text())
        if "_x4_" not in path.name:
            rates.update({result["batch_size"]: row["bf16_images_per_s"] for row in result["rows"] if row["model"] == "resdropnet_s"})
    return rates


def together_rate(probes: Path) -> float:
    """bf16 training images/s of resdropnet_s summed over the probe's four concurrent processes (batch 128)."""
    return sum(row["bf16_images_per_s"] for path in sorted(probes.glob("train_throughput_cuda_x4_*.json"))
               for row in json.loads(path.read_text())["rows"] if row["model"] == "resdropnet_s")


def plan(variants: list[str], lone: dict[int, float], together: float, limit: float,
         pending_ablation_runs: int) -> list[tuple[str, int, str]]:
    seconds = EFFICIENCY * (limit - STARTUP_SECONDS) / TRAIN_IMAGES
    shared = (together * seconds - ABLATION_EPOCHS * pending_ablation_runs) / len(variants)
    rows = []
    for name in variants:
        flags, batch_size = VARIANTS[name]
        if batch_size not in lone:
            # A larger batch is at least as fast per image: planning at the smaller one's rate errs short.
            print(f"plan_epochs: no probe at batch {batch_size}; {name} planned at batch 128's rate", file=sys.stderr)
        epochs = min(MAX_EPOCHS, lone.get(batch_size, lone[128]) * seconds)
        if pending_ablation_runs:
            epochs = min(epochs, max(ABLATION_EPOCHS, shared))
        rows.append((name, int(epochs), flags))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=Path, required=True)
    parser.add_argument("--limit", type=float, required=True, help="jobs.sh's LIMIT in seconds")
    parser.add_argument("--pending", type=int, required=True, help="ablation runs still to train")
    parser.add_argument("--variants", required=True, help=f"space-separated, of: {' '.join(VARIANTS)}")
    parser.add_argument("--epochs", type=int, help="every variant's epochs, instead of planning them")
    args = parser.parse_args()
    names = args.variants.split()
    if unknown := [n for n in names if n not in VARIANTS]:
        raise SystemExit(f"plan_epochs: unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    lone = lone_rates(args.probes)
    if 128 not in lone and not args.epochs:
        raise SystemExit(f"plan_epochs: no train_throughput_cuda.json in {args.probes}: run probe.sh first")
    rows = ([(n, args.epochs, VARIANTS[n][0]) for n in names] if args.epochs
            else plan(names, lone, together_rate(args.probes), args.limit, args.pending))
    for name, epochs, flags in rows:
        print(f"{name}\t{epochs}\t{flags}")


if __name__ == "__main__":
    main()
