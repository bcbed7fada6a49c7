"""How many epochs the accurate recipe gets in jobs.sh's time limit, from probe.sh's measured GPU throughput.

All of jobs.sh's processes share one GPU, so the budget is images: the probe's four-process throughput
(the GPU's aggregate) x EFFICIENCY (Lightning's loop, validation and checkpoints, which the probe's bare
steps lack) x the seconds left for training. The pending ablation runs take their 24 epochs first; the
rest goes to the accurate variants: three (plain, cutmix, mixup) if each gets at least MIN_EPOCHS_EACH,
else the plain one alone. One process cannot go faster than the probe's lone process, however idle the
GPU, so no variant gets more epochs than that rate allows. Prints shell assignments for jobs.sh to eval:

    python3 device/plan_epochs.py --probes DIR --limit 480 --pending 5
"""

import argparse
import json
from pathlib import Path

TRAIN_IMAGES = 28709
ABLATION_EPOCHS = 24
EFFICIENCY = 0.55
STARTUP_SECONDS = 105  # imports, CUDA start and the final evaluation, plus max_time's 60 s margin
MIN_EPOCHS_EACH = 60
MAX_EPOCHS = 150


def resdropnet_s_rates(probes: Path, pattern: str) -> list[float]:
    """The bf16 training images/s of resdropnet_s in each probe result matching pattern."""
    return [row["bf16_images_per_s"] for path in sorted(probes.glob(pattern))
            for row in json.loads(path.read_text())["rows"] if row["model"] == "resdropnet_s"]


def probed_rates(probes: Path) -> tuple[float, float]:
    """(images/s of the four concurrent processes together, images/s of the lone process)."""
    together, alone = resdropnet_s_rates(probes, "train_throughput_cuda_x4_*.json"), resdropnet_s_rates(probes, "train_throughput_cuda.json")
    if not together or not alone:
        raise SystemExit(f"plan_epochs: no train_throughput_cuda*.json in {probes}: run probe.sh first")
    return sum(together), alone[0]


def plan(together: float, alone: float, limit: float, pending_ablation_runs: int) -> tuple[list[str], int]:
    seconds = EFFICIENCY * (limit - STARTUP_SECONDS) / TRAIN_IMAGES
    left = together * seconds - ABLATION_EPOCHS * pending_ablation_runs
    variants = ["accurate", "accurate_cutmix", "accurate_mixup"] if left / 3 >= MIN_EPOCHS_EACH else ["accurate"]
    epochs = int(min(MAX_EPOCHS, alone * seconds, max(ABLATION_EPOCHS, left / len(variants))))
    return variants, epochs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=Path, required=True)
    parser.add_argument("--limit", type=float, required=True, help="jobs.sh's LIMIT in seconds")
    parser.add_argument("--pending", type=int, required=True, help="ablation runs still to train")
    args = parser.parse_args()
    together, alone = probed_rates(args.probes)
    variants, epochs = plan(together, alone, args.limit, args.pending)
    print(f"PLANNED_RATES='{together:.0f} together, {alone:.0f} alone'")
    print(f"VARIANTS='{' '.join(variants)}'")
    print(f"EPOCHS_ACCURATE={epochs}")


if __name__ == "__main__":
    main()
