"""What jobs.sh runs on the GPU, all at once: one process per run, and how many epochs each planned run gets.

Fixed runs come first: the ablation's runs without a record (configs/fast.yaml, 24 epochs) and the screens
(a candidate recipe at fixed epochs, one run per seed, e.g. the fast recipe at 28 epochs). The accurate
recipe's variants share what is left of the GPU. A run's cost is its model's FLOPs per image over
resdropnet_s's; the GPU's capacity is the most resdropnet_s images/s the probe saw from several processes at
once; one process goes no faster than the probe's lone process of its model and batch size. Epochs = images
x EFFICIENCY (Lightning's loop, validation and checkpoints, which the probe's bare steps lack) over the
seconds left for training. A variant that one process cannot feed leaves its share to the others.
Prints one tab-separated line per process for jobs.sh: name, epochs, the `resdropnet` command's arguments.

    python3 device/plan_epochs.py --probes DIR --limit 560 --variants "accurate_b512 accurate_w" --screens fast28

Measured on an H200 (2026-11-26, batch 128): planned 48 epochs beside five ablation runs; they took
390 s of the 395 planned.
"""

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

TRAIN_IMAGES = 28709
ABLATION_MODEL, ABLATION_RATE, ABLATION_EPOCHS = "resdropnet_s", 0.1, 24  # configs/fast.yaml's, as in the README
ABLATION_RECORDS = Path("benchmarks/results/ablation_runs")
SCREEN_RECORDS = Path("benchmarks/results/screens")
EFFICIENCY = 0.55
STARTUP_SECONDS = 105  # imports, CUDA start and the final evaluation, plus max_time's 60 s margin
MIN_EPOCHS, MAX_EPOCHS = 24, 300


@dataclass(frozen=True)
class Variant:
    """One run of a recipe: its YAML, the flags over it, and what sets its speed (model, batch size)."""

    config: str = "configs/accurate.yaml"
    flags: str = ""
    batch_size: int = 128
    model: str = "resdropnet_s"


# Batch 512 takes the square-root rule for AdamW's peak rate (0.002 at 128). On the H200 a step of
# resdropnet_s at batch 128 is bound by kernel launches, not arithmetic (resdropnet_m, 4x the FLOPs, ran as
# fast): a 4x batch should nearly quadruple one process's images/s, and a wider model at batch 128 should
# cost little more than resdropnet_s. probe.sh measures both.
VARIANTS = {
    "accurate": Variant(),
    "accurate_cutmix": Variant(flags="--mix cutmix"),
    "accurate_mixup": Variant(flags="--mix mixup"),
    "accurate_seed1": Variant(flags="--seed 1"),
    "accurate_w": Variant(flags="--model resdropnet_w", model="resdropnet_w"),
    "accurate_b512": Variant(flags="--batch-size 512 --lr 0.004", batch_size=512),
    "accurate_b512_mixup": Variant(flags="--batch-size 512 --lr 0.004 --mix mixup", batch_size=512),
    "accurate_b512_cutmix": Variant(flags="--batch-size 512 --lr 0.004 --mix cutmix", batch_size=512),
}
# Candidate recipes at fixed epochs, three seeds each for a mean: the fast recipe must average 70% PrivateTest
# (24 epochs: 69.69 +- 0.26 with flip) and fit 2 h on a 2-core bf16 CPU (24 epochs took 94 min there).
SCREENS = {
    "fast28": (Variant(config="configs/fast.yaml", flags="--epochs 28"), 28),
}


@dataclass(frozen=True)
class Run:
    name: str
    epochs: int
    model: str
    args: str  # of `python -m resdropnet`, less --data and jobs.sh's EXTRA


def probe_rows(path: Path) -> tuple[int, dict[str, float]]:
    """(batch size, {model: bf16 training images/s}) from one probe.sh result."""
    result = json.loads(path.read_text())
    return result["batch_size"], {row["model"]: row["bf16_images_per_s"] for row in result["rows"]}


def lone_rates(probes: Path) -> dict[tuple[str, int], float]:
    """(model, batch size) -> images/s of one process alone, from probe.sh's lone runs."""
    rates = {}
    for path in sorted(probes.glob("train_throughput_cuda*.json")):
        if "_x" not in path.name.removeprefix("train_throughput_cuda"):
            batch_size, rows = probe_rows(path)
            rates.update({(model, batch_size): rate for model, rate in rows.items()})
    return rates


def capacity(probes: Path) -> float:
    """resdropnet_s images/s of the whole GPU: the highest sum over one of the probe's groups of concurrent
    processes (train_throughput_cuda[_b512]_xK_i.json, i = 1..K)."""
    groups: dict[str, float] = {}
    for path in sorted(probes.glob("train_throughput_cuda*_x*_*.json")):
        group = path.stem.rsplit("_", 1)[0]
        groups[group] = groups.get(group, 0.0) + probe_rows(path)[1]["resdropnet_s"]
    return max(groups.values(), default=0.0)


def cost(model: str) -> float:
    """FLOPs per image relative to resdropnet_s: what a busy GPU pays for one image of this model."""
    from resdropnet.models import count_macs, create_model

    return count_macs(create_model(model)) / count_macs(create_model("resdropnet_s"))


def lone_rate(lone: dict[tuple[str, int], float], model: str, batch_size: int) -> float:
    """One process's images/s; unprobed, resdropnet_s's at that batch (else 128) over the model's cost."""
    if (model, batch_size) in lone:
        return lone[(model, batch_size)]
    if ("resdropnet_s", batch_size) not in lone:
        # A larger batch is at least as fast per image: planning at batch 128's rate errs short.
        print(f"plan_epochs: no probe at batch {batch_size}; planned at batch 128's rate", file=sys.stderr)
    return lone.get(("resdropnet_s", batch_size), lone[("resdropnet_s", 128)]) / cost(model)


def share_out(budget: float, caps: dict[str, float]) -> dict[str, float]:
    """Splits budget equally, except that no one gets more than its cap; what a capped one leaves goes to the rest."""
    shares, open_names = {}, sorted(caps, key=caps.get)
    while open_names:
        share = budget / len(open_names)
        name = open_names[0]
        if caps[name] > share:
            shares.update({n: share for n in open_names})
            break
        shares[name] = caps[name]
        budget -= caps[name]
        open_names.pop(0)
    return shares


def plan(variants: list[str], lone: dict[tuple[str, int], float], gpu_capacity: float, limit: float,
         fixed: list[Run]) -> dict[str, int]:
    """Epochs per variant, once the fixed runs have taken their images of the GPU's capacity."""
    seconds = EFFICIENCY * (limit - STARTUP_SECONDS)
    gpu_capacity = max(gpu_capacity, *(rate for (model, _batch), rate in lone.items() if model == "resdropnet_s"))
    budget = gpu_capacity * seconds - sum(r.epochs * TRAIN_IMAGES * cost(r.model) for r in fixed)
    if budget < MIN_EPOCHS * TRAIN_IMAGES * len(variants):
        print(f"plan_epochs: the fixed runs leave the variants under {MIN_EPOCHS} epochs each; raise LIMIT or "
              "run fewer", file=sys.stderr)
    costs = {name: cost(VARIANTS[name].model) for name in variants}
    caps = {name: lone_rate(lone, VARIANTS[name].model, VARIANTS[name].batch_size) * seconds * costs[name]
            for name in variants}
    shares = share_out(budget, caps)
    return {name: int(min(MAX_EPOCHS, max(MIN_EPOCHS, shares[name] / costs[name] / TRAIN_IMAGES))) for name in variants}


def pending_seeds(placements: list[str], seeds: list[int], records: Path) -> list[tuple[str, int]]:
    """(placement, seed) of each run of the fast recipe's model that has no record yet in records."""
    from resdropnet.training.ablation import ablation_variants, record_path

    variants = ablation_variants([ABLATION_MODEL], placements, [ABLATION_RATE])
    return [(overrides["drop_placement"], seed) for label, _model, overrides in variants for seed in seeds
            if not record_path(records, label, seed).exists()]


def fixed_runs(placements: list[str], seeds: list[int], screens: list[str], screen_seeds: list[int],
               runs: Path) -> list[Run]:
    """The ablation's runs without a record, then each screen's seeds without a record."""
    def ablate(name: str, placement: str, seed: int, records: Path, epochs: int, flags: str = "") -> Run:
        args = (f"ablate --config configs/fast.yaml --rates {ABLATION_RATE} --placements {placement} --seeds {seed} "
                f"--ablation-out {runs / name} --records {records} {flags}")
        return Run(f"{name}_{placement}_{seed}", epochs, ABLATION_MODEL, args.strip())

    rows = [ablate("ablation", p, s, ABLATION_RECORDS, ABLATION_EPOCHS) for p, s in pending_seeds(placements, seeds, ABLATION_RECORDS)]
    for screen in screens:
        variant, epochs = SCREENS[screen]
        rows += [ablate(screen, "mid", s, SCREEN_RECORDS / screen, epochs, variant.flags)
                 for _placement, s in pending_seeds(["mid"], screen_seeds, SCREEN_RECORDS / screen)]
    return rows


def variant_runs(epochs: dict[str, int], runs: Path, max_time: str) -> list[Run]:
    rows = []
    for name, n in epochs.items():
        v = VARIANTS[name]
        args = f"train --config {v.config} --out {runs / name} --epochs {n} {v.flags}" + (f" --max-time {max_time}" if max_time else "")
        rows.append(Run(name, n, v.model, " ".join(args.split())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=Path, required=True)
    parser.add_argument("--limit", type=float, required=True, help="jobs.sh's LIMIT in seconds")
    parser.add_argument("--variants", default="", help=f"space-separated, of: {' '.join(VARIANTS)}")
    parser.add_argument("--screens", default="", help=f"space-separated, of: {' '.join(SCREENS)}")
    parser.add_argument("--screen-seeds", default="0 1 2")
    parser.add_argument("--epochs", type=int, help="every variant's epochs, instead of planning them")
    parser.add_argument("--placements", default="none mid post", help="the ablation's placements (space-separated)")
    parser.add_argument("--seeds", default="1 2", help="the ablation's seeds (space-separated)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where the runs' folders go")
    parser.add_argument("--max-time", default="", help="Lightning's max_time for the variants (DD:HH:MM:SS)")
    args = parser.parse_args()
    names, screens = args.variants.split(), args.screens.split()
    if unknown := [n for n in names if n not in VARIANTS] + [s for s in screens if s not in SCREENS]:
        raise SystemExit(f"plan_epochs: unknown variant(s) {', '.join(unknown)}; known: {', '.join([*VARIANTS, *SCREENS])}")
    lone = lone_rates(args.probes)
    if ("resdropnet_s", 128) not in lone and not args.epochs:
        raise SystemExit(f"plan_epochs: no train_throughput_cuda.json in {args.probes}: run probe.sh first")
    fixed = fixed_runs(args.placements.split(), [int(s) for s in args.seeds.split()], screens,
                       [int(s) for s in args.screen_seeds.split()], args.runs)
    epochs = ({n: args.epochs for n in names} if args.epochs else plan(names, lone, capacity(args.probes), args.limit, fixed))
    for run in fixed + variant_runs(epochs, args.runs, args.max_time):
        print(f"{run.name}\t{run.epochs}\t{run.args}")


if __name__ == "__main__":
    main()
