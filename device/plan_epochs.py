"""What jobs.sh trains on the GPU, and how many epochs each accurate variant gets in its time limit.

The ablation runs without a record in the records folder come first (batch 128, 24 epochs each, one
process each). Each accurate variant runs in a process of its own, and one process goes no faster than
the probe's lone process at the variant's batch size, however idle the GPU: epochs = that rate x
EFFICIENCY (Lightning's loop, validation and checkpoints, which the probe's bare steps lack) x the
seconds left for training. Pending ablation runs share the GPU first: the images left to the variants
are then the probe's four-process throughput (the GPU's aggregate at batch 128) over the same seconds,
less the ablation's. Prints one tab-separated line per process for jobs.sh:
"ablate, placement, seed, rate" or "train, variant, epochs, flags".

    python3 device/plan_epochs.py --probes DIR --limit 560 --variants "accurate_b512 accurate"

Measured on an H200 (2026-11-26, batch 128): planned 48 epochs beside five ablation runs; they took
390 s of the 395 planned.
"""

import argparse
import json
import sys
from pathlib import Path

TRAIN_IMAGES = 28709
ABLATION_MODEL, ABLATION_RATE, ABLATION_EPOCHS = "resdropnet_s", 0.1, 24  # configs/fast.yaml's, as in the README
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


def resdropnet_s_rate(probe: Path) -> tuple[int, float]:
    """(batch size, bf16 training images/s of resdropnet_s) from one probe.sh result."""
    result = json.loads(probe.read_text())
    return result["batch_size"], next(row["bf16_images_per_s"] for row in result["rows"] if row["model"] == "resdropnet_s")


def lone_rates(probes: Path) -> dict[int, float]:
    """Batch size -> images/s of one resdropnet_s process, from probe.sh's lone runs."""
    return dict(resdropnet_s_rate(path) for path in sorted(probes.glob("train_throughput_cuda*.json")) if "_x4_" not in path.name)


def together_rate(probes: Path) -> float:
    """Images/s of resdropnet_s summed over the probe's four concurrent processes (batch 128)."""
    return sum(resdropnet_s_rate(path)[1] for path in sorted(probes.glob("train_throughput_cuda_x4_*.json")))


def pending_ablation_runs(placements: list[str], seeds: list[int], records: Path) -> list[tuple[str, int]]:
    """(placement, seed) of each ablation run that has no record yet, where `resdropnet ablate --records` keeps them."""
    from resdropnet.training.ablation import ablation_variants, record_path

    variants = ablation_variants([ABLATION_MODEL], placements, [ABLATION_RATE])
    return [(overrides["drop_placement"], seed) for label, _model, overrides in variants for seed in seeds
            if not record_path(records, label, seed).exists()]


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
    parser.add_argument("--variants", required=True, help=f"space-separated, of: {' '.join(VARIANTS)}")
    parser.add_argument("--epochs", type=int, help="every variant's epochs, instead of planning them")
    parser.add_argument("--placements", default="none mid post", help="the ablation's placements (space-separated)")
    parser.add_argument("--seeds", default="1 2", help="the ablation's seeds (space-separated)")
    parser.add_argument("--records", type=Path, default=Path("benchmarks/results/ablation_runs"))
    args = parser.parse_args()
    names = args.variants.split()
    if unknown := [n for n in names if n not in VARIANTS]:
        raise SystemExit(f"plan_epochs: unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    lone = lone_rates(args.probes)
    if 128 not in lone and not args.epochs:
        raise SystemExit(f"plan_epochs: no train_throughput_cuda.json in {args.probes}: run probe.sh first")
    pending = pending_ablation_runs(args.placements.split(), [int(s) for s in args.seeds.split()], args.records)
    rows = ([(n, args.epochs, VARIANTS[n][0]) for n in names] if args.epochs
            else plan(names, lone, together_rate(args.probes), args.limit, len(pending)))
    for placement, seed in pending:
        print(f"ablate\t{placement}\t{seed}\t{ABLATION_RATE}")
    for name, epochs, flags in rows:
        print(f"train\t{name}\t{epochs}\t{flags}")


if __name__ == "__main__":
    main()
