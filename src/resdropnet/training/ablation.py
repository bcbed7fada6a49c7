"""Trains named configs and their dropout-off twins under one budget and several seeds."""

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from resdropnet.system import machine_info
from resdropnet.training.config import TrainConfig

SPLITS = {"public_test": "val", "private_test": "test"}


def ablation_variants(models: list[str], placements: list[str], rates: list[float]) -> list[tuple[str, str, dict]]:
    """(label, model, model_overrides) for each model at each placement and rate; 'none' once per model."""
    variants = []
    for model in models:
        for placement in placements:
            if placement == "none":
                variants.append((f"{model} none", model, {"drop_placement": "none", "drop_rate": 0.0}))
                continue
            for rate in rates:
                variants.append((f"{model} {placement} {rate}", model, {"drop_placement": placement, "drop_rate": rate}))
    return variants


def summarise(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def summarise_runs(reports: dict[int, dict]) -> dict:
    """Mean and spread over seeds, per split and per TTA that every run reported; values follow `seeds`."""
    seeds = sorted(reports)
    ttas = [t for t in reports[seeds[0]]["test"] if all(t in reports[s]["test"] for s in seeds)]
    summary = {"seeds": seeds, "train_minutes": summarise([reports[s]["timing"]["train_wall_seconds"] / 60 for s in seeds])}
    for split, key in SPLITS.items():
        summary[split] = {t: summarise([reports[s][key][t]["accuracy"] for s in seeds]) for t in ttas}
    return summary


def run_directory(out: Path, label: str, seed: int) -> Path:
    return out / label.replace(" ", "_") / f"seed{seed}"


def run_ablation(base: TrainConfig, variants, seeds: list[int], out: Path, tta: str = "none",
                 train_missing: bool = True) -> dict:
    """Trains every variant with every seed (finished runs reused, stopped ones resumed) and writes the results.

    With train_missing=False nothing trains: the runs already finished are summarised as they stand.
    """
    from resdropnet.training.fit import train

    results = {}
    for label, model, overrides in variants:
        reports = {}
        for seed in seeds:
            run_dir = run_directory(out, label, seed)
            report_path = run_dir / "report.json"
            if report_path.exists():
                reports[seed] = json.loads(report_path.read_text())
            elif train_missing:
                # Flip is reported too: every ablation run of the fast recipe is also a measurement of its time to 70%.
                cfg = replace(base, model=model, model_overrides={**base.model_overrides, **overrides}, seed=seed,
                              out=str(run_dir), report_tta=",".join(dict.fromkeys(["none", "flip", tta])))
                reports[seed] = train(cfg, resume=(run_dir / "checkpoints" / "last.ckpt").exists())
        if reports:
            results[label] = summarise_runs(reports)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"date": time.strftime("%Y-%m-%d"), "machine": machine_info(), "budget": base.to_dict(), "results": results}
    (out / "ablation.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / "ablation.md").write_text(ablation_table(results) + "\n")
    return results


def paired_difference(results: dict, label: str, baseline: str, split: str, tta: str) -> dict | None:
    """label minus baseline, seed by seed over the seeds both have: the fair test of the same recipe with one change."""
    a, b = results[label], results[baseline]
    shared = [s for s in a["seeds"] if s in b["seeds"]]
    if label == baseline or not shared:
        return None
    value = {s: v for s, v in zip(a["seeds"], a[split][tta]["values"])}
    base = {s: v for s, v in zip(b["seeds"], b[split][tta]["values"])}
    return summarise([value[s] - base[s] for s in shared])


def percent(summary: dict, signed: bool = False) -> str:
    sign = "+" if signed else ""
    text = f"{summary['mean'] * 100:{sign}.2f}"
    return text + (f" ± {summary['std'] * 100:.2f}" if len(summary["values"]) > 1 else "")


def ablation_table(results: dict) -> str:
    """Accuracy (%) as mean ± std over seeds for no TTA and flip, and each variant's paired gain over `none`."""
    if not results:
        return "No finished runs yet."
    ttas = [t for t in ("none", "flip") if all(t in r["private_test"] for r in results.values())]
    columns = [f"{name} {t}" for name in ("PublicTest", "PrivateTest") for t in ttas]
    lines = [f"| variant | seeds | {' | '.join(columns)} | PrivateTest {ttas[-1]}: gain over no dropout, same seed | minutes |",
             "|---|---|" + "---|" * len(columns) + "---|---|"]
    for label, r in results.items():
        cells = [percent(r[split][t]) for split in SPLITS for t in ttas]
        baseline = f"{label.split(' ')[0]} none"  # the same model with block dropout off
        gain = paired_difference(results, label, baseline, "private_test", ttas[-1]) if baseline in results else None
        seeds = ",".join(str(s) for s in r["seeds"])
        lines.append(f"| {label} | {seeds} | {' | '.join(cells)} | {percent(gain, signed=True) if gain else '—'} | "
                     f"{r['train_minutes']['mean']:.0f} |")
    lines.append("\nAccuracy in %, mean ± standard deviation over seeds (one seed: no spread). Every variant trains with "
                 "the same recipe, budget and seeds; the gain column subtracts the `none` run of the same seed; minutes: training wall-clock.")
    return "\n".join(lines)
