"""Back from a GPU call: every finished run in results.tgz (or an unpacked runs folder) in one table, best
PublicTest first, beside the shipped `default`; then the mean and spread of each group of seeds (screens,
ablation). PublicTest picks; PrivateTest only reports.

    python device/summarise.py FILES_AT/results.tgz
"""

import argparse
import json
import re
import statistics
import tarfile
from pathlib import Path

SEED_FOLDER = re.compile(r"^(?P<group>.+)/seed\d+$")
SPLITS = (("PublicTest", "public_test_accuracy"), ("PrivateTest", "private_test_accuracy"))


def finished_runs(source: Path) -> dict[str, dict]:
    """Run folder -> the benchmark.json its run wrote at its end, from a results.tgz or under a folder."""
    if source.is_dir():
        return {str(path.parent.relative_to(source)): json.loads(path.read_text())
                for path in sorted(source.rglob("benchmark.json"))}
    with tarfile.open(source) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith("/benchmark.json")), key=lambda m: m.name)
        return {str(Path(m.name).parent): json.load(tar.extractfile(m)) for m in members}


def percent(accuracies: dict, tta: str) -> str:
    return f"{accuracies[tta]:.2%}" if tta in accuracies else "-"


def runs_table(runs: dict[str, dict], default: dict | None) -> str:
    lines = ["| run | model | epochs | best epoch | minutes | PublicTest | flip | PrivateTest | flip |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, run in sorted(runs.items(), key=lambda item: -item[1]["public_test_accuracy"]["none"]):
        public, private = run["public_test_accuracy"], run["private_test_accuracy"]
        lines.append(f"| {name} | {run['model']} | {run['epochs']} | {run['best_epoch']} | "
                     f"{run['train_wall_seconds'] / 60:.1f} | {percent(public, 'none')} | {percent(public, 'flip')} | "
                     f"{percent(private, 'none')} | {percent(private, 'flip')} |")
    if default:  # its report.json counts epochs from 0, benchmark.json from 1
        public, private = ({tta: m["accuracy"] for tta, m in default[split].items()} for split in ("val", "test"))
        lines.append(f"| shipped `default` | {default['model']} | {default['timing']['epochs']} | {default['best_epoch'] + 1} | "
                     f"{default['timing']['train_wall_seconds'] / 60:.1f} | {percent(public, 'none')} | "
                     f"{percent(public, 'flip')} | {percent(private, 'none')} | {percent(private, 'flip')} |")
    return "\n".join(lines)


def mean_and_spread(values: list[float]) -> str:
    spread = f" ± {statistics.stdev(values) * 100:.2f}" if len(values) > 1 else ""
    return f"{statistics.mean(values) * 100:.2f}{spread}"


def groups_table(runs: dict[str, dict]) -> str:
    groups: dict[str, list[dict]] = {}
    for name, run in runs.items():
        if match := SEED_FOLDER.match(name):
            groups.setdefault(match["group"], []).append(run)
    lines = ["| group | seeds | PublicTest | flip | PrivateTest | flip |", "|---|---|---|---|---|---|"]
    for group, members in sorted(groups.items()):
        cells = [mean_and_spread([run[key][tta] for run in members]) for _split, key in SPLITS for tta in ("none", "flip")]
        lines.append(f"| {group} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if groups else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path, help="results.tgz from device/jobs.sh, or a folder of runs")
    parser.add_argument("--default-report", type=Path,
                        default=Path(__file__).resolve().parents[1] / "src/resdropnet/weights/default/report.json")
    args = parser.parse_args()
    if not args.source.exists():
        raise SystemExit(f"summarise: {args.source}: no such file or folder")
    runs = finished_runs(args.source)
    if not runs:
        raise SystemExit(f"summarise: no finished run (benchmark.json) in {args.source}")
    default = json.loads(args.default_report.read_text()) if args.default_report.exists() else None
    print(runs_table(runs, default))
    if groups := groups_table(runs):
        print("\nMean ± standard deviation over seeds, in %:\n\n" + groups)


if __name__ == "__main__":
    main()
