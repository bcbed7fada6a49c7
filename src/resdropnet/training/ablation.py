"""Trains named configs and their dropout-off twins under one budget and several seeds."""

import json
import statistics
from dataclasses import replace
from pathlib import Path

from resdropnet.training.config import TrainConfig
from resdropnet.training.fit import train


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


def run_ablation(base: TrainConfig, variants, seeds: list[int], out: Path, tta: str = "none") -> dict:
    """Trains every variant with every seed (resuming finished runs from their report) and writes results."""
    results = {}
    for label, model, overrides in variants:
        val, test = [], []
        for seed in seeds:
            run_dir = out / label.replace(" ", "_") / f"seed{seed}"
            report_path = run_dir / "report.json"
            if report_path.exists():
                report = json.loads(report_path.read_text())
            else:
                # Flip is reported too: every ablation run of the fast recipe is also a measurement of its time to 70%.
                cfg = replace(base, model=model, model_overrides={**base.model_overrides, **overrides}, seed=seed, out=str(run_dir),
                              report_tta=",".join(dict.fromkeys(["none", "flip", tta])))
                report = train(cfg, resume=(run_dir / "checkpoints" / "last.ckpt").exists())
            val.append(report["val"][tta]["accuracy"])
            test.append(report["test"][tta]["accuracy"])
        results[label] = {"public_test": summarise(val), "private_test": summarise(test), "seeds": seeds}
    table = ablation_table(results, tta)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps({"tta": tta, "budget": base.to_dict(), "results": results}, indent=2) + "\n")
    (out / "ablation.md").write_text(table + "\n")
    return results


def ablation_table(results: dict, tta: str) -> str:
    lines = [f"| variant | seeds | PublicTest acc (mean ± std) | PrivateTest acc (mean ± std) |", "|---|---|---|---|"]
    for label, r in results.items():
        pub, priv = r["public_test"], r["private_test"]
        lines.append(f"| {label} | {len(r['seeds'])} | {pub['mean']:.4f} ± {pub['std']:.4f} | {priv['mean']:.4f} ± {priv['std']:.4f} |")
    lines.append(f"\nTTA: {tta}. Every variant trained with the same recipe and budget.")
    return "\n".join(lines)
