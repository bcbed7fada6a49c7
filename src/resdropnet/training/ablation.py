"""Trains named configs and their dropout-off twins under one budget and several seeds."""

import json
import statistics
import time
from dataclasses import replace
from itertools import groupby
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
                overrides = [{"drop_placement": "none", "drop_rate": 0.0}]
            else:
                overrides = [{"drop_placement": placement, "drop_rate": rate} for rate in rates]
            variants += [(variant_label(model, o), model, o) for o in overrides]
    return variants


def summarise(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def summarise_runs(records: dict[int, dict]) -> dict:
    """Mean and spread over seeds of training-run records (benchmark.json), per split and per TTA every run reported."""
    seeds = sorted(records)
    ttas = [t for t in records[seeds[0]]["private_test_accuracy"]
            if all(t in records[s]["private_test_accuracy"] for s in seeds)]
    summary = {
        "seeds": seeds,
        "train_minutes": summarise([records[s]["train_wall_seconds"] / 60 for s in seeds]),
        "trained_on": [trained_on(records[s]) for s in seeds],
    }
    for split in SPLITS:
        summary[split] = {t: summarise([records[s][f"{split}_accuracy"][t] for s in seeds]) for t in ttas}
    return summary


def trained_on(record: dict) -> str:
    """The machine(s) and precision a run trained on, from its segments where kept (a run may resume elsewhere)."""
    segments = record.get("segments") or [{"machine": record["machine"]["cpu"], "precision": record["precision"]}]
    # A run stopped and resumed on the same kind of machine is one stretch, however many times it resumed.
    stretches = [(place, sum(s.get("epochs") or 0 for s in group))
                 for place, group in groupby(segments, key=lambda s: f"{s['machine']}, {s['precision']}")]
    if len(stretches) == 1:
        return stretches[0][0]
    return " then ".join(f"{place} ({epochs} epoch{'s' if epochs != 1 else ''})" for place, epochs in stretches)


def run_directory(out: Path, label: str, seed: int) -> Path:
    return out / label.replace(" ", "_") / f"seed{seed}"


def record_path(records: Path, label: str, seed: int) -> Path:
    return records / label.replace(" ", "_") / f"seed{seed}.json"


def variant_label(model: str, overrides: dict) -> str:
    placement = overrides.get("drop_placement", "none")
    return f"{model} none" if placement == "none" else f"{model} {placement} {overrides['drop_rate']}"


def resolved_variant_label(model: str, model_overrides: dict) -> str:
    """The variant a run trained, its dropout taken from the registry where model_overrides leave it out."""
    from resdropnet.models.registry import MODEL_CONFIGS

    config = replace(MODEL_CONFIGS[model], **model_overrides)
    return variant_label(model, {"drop_placement": config.drop_placement, "drop_rate": config.drop_rate})


# Config fields that say where and how a run went, not what it trained: they may differ between records.
NOT_RECIPE = ("seed", "out", "report_tta", "data", "precision", "accelerator", "devices", "num_nodes", "strategy",
              "threads")


def recipe(config: dict) -> dict:
    """What a run's config trained, but for its dropout and seed."""
    config = {**TrainConfig().to_dict(), **config}  # fields added since the run take their defaults
    shared = {k: v for k, v in config.items() if k not in NOT_RECIPE}
    shared["model_overrides"] = {k: v for k, v in config["model_overrides"].items() if not k.startswith("drop_")}
    return shared


def recipe_key(config: dict) -> str:
    """recipe(config) as a string: runs with equal keys compare."""
    return json.dumps(recipe(config), sort_keys=True)


def load_records(records: Path) -> dict[str, dict[int, dict]]:
    """Every kept run record under records, by variant label and seed, in the order none, mid, post, rate.

    The records must share one recipe but for the dropout and the seed: otherwise their means would not compare.
    """
    from resdropnet.models.resdropnet import PLACEMENTS

    found, recipes = {}, {}
    for path in sorted(records.glob("*/seed*.json")):
        record = json.loads(path.read_text())
        config = {**TrainConfig().to_dict(), **record["config"]}  # fields added since the run take their defaults
        recipes[path] = recipe_key(config)
        label = resolved_variant_label(config["model"], config["model_overrides"])
        found.setdefault(label, {})[config["seed"]] = record
    if len(set(recipes.values())) > 1:
        first = next(iter(recipes))
        odd = [str(p) for p, r in recipes.items() if r != recipes[first]]
        raise ValueError(f"{records}: runs of different recipes cannot be summarised together: {first} vs {', '.join(odd)}")

    def order(label: str):
        model, placement, *rate = label.split(" ")
        return model, PLACEMENTS.index(placement), rate

    return {label: found[label] for label in sorted(found, key=order)}


def summarise_records(records: Path) -> dict:
    return {label: summarise_runs(runs) for label, runs in load_records(records).items()}


def run_ablation(base: TrainConfig, variants, seeds: list[int], out: Path, tta: str = "none",
                 train_missing: bool = True, records: Path | None = None) -> dict:
    """Trains every variant with every seed (finished runs reused, stopped ones resumed) and writes the results.

    records, if given, is a folder of run records (each run's benchmark.json) that outlives out: finished runs are
    copied there and a run with a record is not trained again, so the ablation can grow across machines and sessions.
    With train_missing=False nothing trains: the runs already finished are summarised as they stand.
    """
    from resdropnet.training.fit import train

    results = {}
    for label, model, overrides in variants:
        runs = {}
        for seed in seeds:
            run_dir = run_directory(out, label, seed)
            kept = record_path(records, label, seed) if records else None
            if not (run_dir / "benchmark.json").exists() and not (kept and kept.exists()) and train_missing:
                # Flip is reported too: every ablation run of the fast recipe is also a measurement of its time to 70%.
                cfg = replace(base, model=model, model_overrides={**base.model_overrides, **overrides}, seed=seed,
                              out=str(run_dir), report_tta=",".join(dict.fromkeys(["none", "flip", tta])))
                train(cfg, resume=(run_dir / "checkpoints" / "last.ckpt").exists())
            if (run_dir / "benchmark.json").exists():
                runs[seed] = json.loads((run_dir / "benchmark.json").read_text())
                if kept:
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    kept.write_text(json.dumps(runs[seed], indent=2) + "\n")
            elif kept and kept.exists():
                runs[seed] = json.loads(kept.read_text())
        if runs:
            results[label] = summarise_runs(runs)
    out.mkdir(parents=True, exist_ok=True)
    budget = {k: v for k, v in base.to_dict().items() if k not in NOT_RECIPE}
    payload = {"date": time.strftime("%Y-%m-%d"), "machine": machine_info(), "budget": budget, "results": results}
    (out / "ablation.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / "ablation.md").write_text(ablation_table(results) + "\n")
    if results:
        from resdropnet.evaluation.plots import plot_ablation

        plot_ablation(results, out / "ablation.png", reported_ttas(results)[-1])
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


def machines_used(results: dict) -> dict[str, list[str]]:
    """Which runs (variant and seed) trained on which machine and precision."""
    machines = {}
    for label, r in results.items():
        for seed, machine in zip(r["seeds"], r["trained_on"]):
            machines.setdefault(machine, []).append(f"{label} seed {seed}")
    return machines


def reported_ttas(results: dict) -> list[str]:
    """The TTAs the ablation reports (no TTA, then flip) that every variant has; the last is the one it judges by."""
    return [t for t in ("none", "flip") if all(t in r["private_test"] for r in results.values())]


def ablation_table(results: dict) -> str:
    """Accuracy (%) as mean ± std over seeds for no TTA and flip, and each variant's paired gain over `none`."""
    if not results:
        return "No finished runs yet."
    ttas = reported_ttas(results)
    columns = [f"{name} {t}" for name in ("PublicTest", "PrivateTest") for t in ttas]
    lines = [f"| variant | seeds | {' | '.join(columns)} | PrivateTest {ttas[-1]}: gain over no dropout, same seed | minutes per seed |",
             "|---|---|" + "---|" * len(columns) + "---|---|"]
    for label, r in results.items():
        cells = [percent(r[split][t]) for split in SPLITS for t in ttas]
        baseline = f"{label.split(' ')[0]} none"  # the same model with block dropout off
        gain = paired_difference(results, label, baseline, "private_test", ttas[-1]) if baseline in results else None
        seeds = ",".join(str(s) for s in r["seeds"])
        minutes = ", ".join(f"{m:.0f}" for m in r["train_minutes"]["values"])
        lines.append(f"| {label} | {seeds} | {' | '.join(cells)} | {percent(gain, signed=True) if gain else '—'} | {minutes} |")
    lines.append("\nAccuracy in %, mean ± standard deviation over seeds (one seed: no spread). Every variant trains with "
                 "the same recipe, budget and seeds; the gain column subtracts the `none` run of the same seed; minutes: "
                 "training wall-clock of each seed's run, which depends on the machine:")
    lines += [f"- {machine}: {', '.join(runs)}" for machine, runs in machines_used(results).items()]
    return "\n".join(lines)
