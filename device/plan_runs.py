"""What jobs.sh runs on the GPU, all at once, one process per run.

Fixed runs, each a whole number of epochs: the ablation's runs without a record (configs/fast.yaml,
24 epochs) and the screens' seeds without a record (a candidate recipe at fixed epochs, e.g. the fast
recipe at 28). The accurate recipe's variants train on a time budget (`resdropnet train --time-budget`):
their schedules run on the clock and end when the call's time is up, however many runs share the GPU and
however fast each goes, so nothing is planned from a throughput guess and nothing is cut off mid-schedule.
Prints one tab-separated line per process for jobs.sh: name, epochs (or "budget"), the arguments of
`python -m resdropnet` less --data and jobs.sh's EXTRA.

    python3 device/plan_runs.py --limit 560 --variants "accurate_b512 accurate_w" --screens fast28 --runs DIR
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

ABLATION_RATE, ABLATION_EPOCHS = 0.1, 24  # configs/fast.yaml's, as in the README
ABLATION_RECORDS = Path("benchmarks/results/ablation_runs")
SCREEN_RECORDS = Path("benchmarks/results/screens")
MAX_VARIANTS = 5
# Seconds of a call's LIMIT that are not training: imports, CUDA start, a teacher's pass, the final report.
OVERHEAD_SECONDS = 75

# Batch 512 takes the square-root rule for AdamW's peak rate (0.002 at 128). On the H200 a step of
# resdropnet_s at batch 128 is bound by kernel launches, not arithmetic (resdropnet_m, 4x the FLOPs, ran as
# fast): a 4x batch should give one process nearly 4x the images/s, and a wider model at batch 128 should
# cost little more time than resdropnet_s.
VARIANTS = {
    "accurate": "",
    "accurate_cutmix": "--mix cutmix",
    "accurate_mixup": "--mix mixup",
    "accurate_seed1": "--seed 1",
    "accurate_w": "--model resdropnet_w",
    "accurate_b512": "--batch-size 512 --lr 0.004",
    "accurate_b512_mixup": "--batch-size 512 --lr 0.004 --mix mixup",
    "accurate_b512_cutmix": "--batch-size 512 --lr 0.004 --mix cutmix",
    # A longer schedule can take stronger augmentation (rotation 15 degrees, shifts 7.5%, scale 15%, erasing 0.75).
    "accurate_b512_aug15": "--batch-size 512 --lr 0.004 --augment 1.5",
    # Born-again distillation: a fresh resdropnet_s learns from the shipped one's softened outputs as well as
    # from the labels (FER2013's labels are noisy; the teacher's are soft).
    "accurate_b512_kd": "--batch-size 512 --lr 0.004 --teacher default",
    # Session 12 measured distillation from `default` as the largest single gain (+1.2 points PublicTest over batch 512
    # alone): the next teachers all distil from today's `default`, varied by seed, augmentation and width so that
    # their ensemble is not four copies of one model.
    "accurate_b512_kd_s1": "--batch-size 512 --lr 0.004 --teacher default --seed 1",
    "accurate_b512_kd_aug15": "--batch-size 512 --lr 0.004 --teacher default --augment 1.5",
    "accurate_w_b512_kd": "--model resdropnet_w --batch-size 512 --lr 0.004 --teacher default",
}
# jobs.sh's first call trains these; its second distils a fresh resdropnet_s from their ensemble (accurate_b512_ens).
# Session 12's teachers were accurate_b512, accurate_b512_kd, accurate_b512_aug15 and accurate_w (configs/accurate_ens.yaml).
TEACHERS = ("accurate_b512_kd", "accurate_b512_kd_s1", "accurate_b512_kd_aug15", "accurate_w_b512_kd")
# A second call on the still-warm machine: the teachers' weights are still under {runs}.
VARIANTS["accurate_b512_ens"] = "--batch-size 512 --lr 0.004 --teacher " + ",".join(
    f"{{runs}}/{teacher}/model.safetensors" for teacher in TEACHERS)
# Candidate recipes at fixed epochs, one run per seed for a mean: the fast recipe must average 70% PrivateTest
# (24 epochs: 69.69 +- 0.26 with flip) and fit 2 h on a 2-core bf16 CPU (24 epochs took 94 min there).
# fast28 became the YAML (session 12); its five runs average 69.97 +- 0.37 (session 16), so fast32 was screened next
# (28 epochs: 61-63 min on that CPU, 7.2 on a shared H200): its seeds 0-1 ran on the CPU (session 17,
# screens/fast32_cpu) and PublicTest fell for both, so the YAML stays at 28.
SCREENS = {"fast28": 28, "fast32": 32}


@dataclass(frozen=True)
class Run:
    name: str
    epochs: str  # a number, or "budget"
    args: str


def pending_seeds(placements: list[str], seeds: list[int], records: Path,
                  rates: tuple[float, ...] = (ABLATION_RATE,)) -> list[tuple[str, float, int]]:
    """(placement, rate, seed) of each run of the fast recipe's model that has no record yet in records
    ('none' once, whatever the rates)."""
    from resdropnet.training.ablation import ablation_variants, record_path

    variants = ablation_variants(["resdropnet_s"], placements, list(rates))
    return [(overrides["drop_placement"], overrides["drop_rate"] or ABLATION_RATE, seed)
            for label, _model, overrides in variants for seed in seeds if not record_path(records, label, seed).exists()]


def ablate(name: str, placement: str, rate: float, seed: int, records: Path, epochs: int, runs: Path) -> Run:
    """One seed of configs/fast.yaml at one dropout placement and rate, kept as a record when it finishes."""
    variant = placement if placement == "none" else f"{placement}_{rate:g}"
    return Run(f"{name}_{variant}_{seed}", str(epochs),
               f"ablate --config configs/fast.yaml --epochs {epochs} --rates {rate:g} --placements {placement} "
               f"--seeds {seed} --ablation-out {runs / name} --records {records}")


def fixed_runs(placements: list[str], seeds: list[int], screens: list[str], screen_seeds: list[int],
               runs: Path, rates: tuple[float, ...] = (ABLATION_RATE,)) -> list[Run]:
    """The ablation's runs without a record (each placement at each rate), then each screen's seeds without a record."""
    rows = [ablate("ablation", p, r, s, ABLATION_RECORDS, ABLATION_EPOCHS, runs)
            for p, r, s in pending_seeds(placements, seeds, ABLATION_RECORDS, rates)]
    for screen in screens:
        rows += [ablate(screen, p, r, s, SCREEN_RECORDS / screen, SCREENS[screen], runs)
                 for p, r, s in pending_seeds(["mid"], screen_seeds, SCREEN_RECORDS / screen)]
    return rows


def variant_runs(names: list[str], runs: Path, limit: float, epochs: int | None = None) -> list[Run]:
    """Each variant of configs/accurate.yaml on the call's time budget, or for a fixed number of epochs."""
    length = f"--epochs {epochs}" if epochs else f"--time-budget {limit - OVERHEAD_SECONDS:.0f}"
    return [Run(name, str(epochs or "budget"),
                " ".join(f"train --config configs/accurate.yaml --out {runs / name} {length} "
                         f"{VARIANTS[name].format(runs=runs)}".split()))
            for name in names]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=float, required=True, help="jobs.sh's LIMIT in seconds")
    parser.add_argument("--variants", default=" ".join(TEACHERS), help=f"space-separated, of: {' '.join(VARIANTS)}")
    parser.add_argument("--screens", default="", help=f"space-separated, of: {' '.join(SCREENS)}")
    parser.add_argument("--screen-seeds", default="0 1 2")
    parser.add_argument("--epochs", type=int, help="every variant's epochs, instead of the time budget")
    parser.add_argument("--placements", default="none mid post", help="the ablation's placements (space-separated)")
    parser.add_argument("--seeds", default="1 2", help="the ablation's seeds (space-separated)")
    parser.add_argument("--rates", default=f"{ABLATION_RATE:g}", help="the ablation's dropout rates (space-separated)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where the runs' folders go")
    args = parser.parse_args()
    names, screens = args.variants.split(), args.screens.split()
    if unknown := [n for n in names if n not in VARIANTS] + [s for s in screens if s not in SCREENS]:
        raise SystemExit(f"plan_runs: unknown variant(s) {', '.join(unknown)}; known: {', '.join([*VARIANTS, *SCREENS])}")
    if len(names) > MAX_VARIANTS:
        raise SystemExit(f"plan_runs: {len(names)} variants; at most {MAX_VARIANTS}, whose weights (11-13 MB each) and "
                         "results.tgz come back from the call (8 files, 64 MiB in all)")
    if args.limit <= OVERHEAD_SECONDS:
        raise SystemExit(f"plan_runs: LIMIT {args.limit:.0f} s leaves no time to train (overhead {OVERHEAD_SECONDS} s)")
    fixed = fixed_runs(args.placements.split(), [int(s) for s in args.seeds.split()], screens,
                       [int(s) for s in args.screen_seeds.split()], args.runs, tuple(float(r) for r in args.rates.split()))
    for run in fixed + variant_runs(names, args.runs, args.limit, args.epochs):
        print(f"{run.name}\t{run.epochs}\t{run.args}")


if __name__ == "__main__":
    main()
