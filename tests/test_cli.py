"""The `resdropnet` command: help, models, evaluate and ablate, through the real entry point."""

import json
import shutil
import subprocess
import sys

import cv2
import pytest
import torch

from conftest import PROJECT_ROOT, readme_shell_commands
from resdropnet.cli import EVALUATION_TTAS, build_parser, main, train_config_from_args
from resdropnet.evaluation.tta import TTA_MODES
from resdropnet.models import create_model
from resdropnet.training.ablation import ablation_table, summarise, summarise_records
from resdropnet.weights import save_model

SUBCOMMANDS = [["models"], ["data"], ["data", "prepare"], ["train"], ["evaluate"], ["ablate"], ["predict"], ["video"],
               ["demo"], ["export"], ["serve"]]


@pytest.mark.parametrize("words", SUBCOMMANDS)
def test_every_subcommand_has_help(words):
    result = subprocess.run([sys.executable, "-m", "resdropnet", *words, "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage: resdropnet" in result.stdout


def test_version():
    import resdropnet

    result = subprocess.run([sys.executable, "-m", "resdropnet", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"resdropnet {resdropnet.__version__}"


def test_every_command_line_of_the_readme_parses(monkeypatch):
    """Each `resdropnet` call in the README's shell blocks names real flags and choices; train and ablate calls
    also build their recipe (config file, flags and their combination checked), as `resdropnet` itself would."""
    monkeypatch.chdir(PROJECT_ROOT)
    calls = readme_shell_commands("resdropnet")
    assert {words[1] for words in calls} >= {"demo", "data", "train", "ablate", "evaluate", "predict", "video", "export",
                                             "serve", "ship"}
    for words in calls:
        args = build_parser().parse_args(words[1:])
        if words[1] in ("train", "ablate"):
            train_config_from_args(args)


def test_models_lists_parameters_and_mflops(capsys):
    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["resdropnet_s"]["params"] == rows["resdropnet_s_nodrop"]["params"] > 1_000_000
    assert rows["resdropnet_m"]["mflops"] > rows["resdropnet_s"]["mflops"] > 0
    assert rows["resdropnet_s_nodrop"]["dropout"] == "none"


@pytest.mark.parametrize("tta", ["flip", "tencrop", "flip+tencrop"])
def test_evaluate_prints_metrics_and_plots(folder_fixture, tmp_path, capsys, tta):
    weights = save_model(create_model("resdropnet_t").eval(), tmp_path / "w.safetensors")
    plot = tmp_path / "cm.png"
    args = ["evaluate", "--data", str(folder_fixture), "--weights", str(weights), "--split", "private", "--tta", tta]
    assert main([*args, "--json", "--plot", str(plot), "--reliability", str(tmp_path / "rel.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["num_images"] == 21 and report["tta"] == tta
    assert set(report) >= {"accuracy", "macro_f1", "ece", "per_class", "confusion_matrix", "calibration"}
    assert sum(map(sum, report["confusion_matrix"])) == 21 == sum(b["faces"] for b in report["calibration"])
    for png in (plot, tmp_path / "rel.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args[:-2]) == 0
    assert "macro-F1" in capsys.readouterr().out


def test_flip_plus_tencrop_averages_the_twelve_views_of_both():
    from resdropnet.evaluation.tta import predict_probabilities, views

    model = create_model("resdropnet_t").eval()
    faces = torch.randint(0, 256, (5, 48, 48), dtype=torch.uint8)
    assert len(views(faces.unsqueeze(1).float(), "flip+tencrop")) == 12
    both = predict_probabilities(model, faces, tta="flip+tencrop")
    weighted = (2 * predict_probabilities(model, faces, tta="flip") + 10 * predict_probabilities(model, faces, tta="tencrop")) / 12
    assert torch.allclose(both, weighted, atol=1e-6)


def test_the_cli_offers_every_tta_mode():
    assert EVALUATION_TTAS == TTA_MODES  # spelled out in the CLI to keep torch out of its start


def test_evaluate_names_missing_weights(folder_fixture, tmp_path, capsys):
    assert main(["evaluate", "--data", str(folder_fixture), "--weights", str(tmp_path / "nope.safetensors")]) == 1
    assert "nope.safetensors: no such weights file" in capsys.readouterr().err


@pytest.mark.slow
def test_ablate_writes_mean_and_std_table(fer_cache, tmp_path, capsys):
    out = tmp_path / "ablation"
    args = ["ablate", "--data", str(fer_cache), "--models", "resdropnet_t", "--placements", "none,mid", "--rates", "0.2",
            "--seeds", "0,1", "--epochs", "1", "--subset", "300", "--batch-size", "50", "--precision", "32",
            "--optimizer", "adamw", "--lr", "0.002", "--ablation-out", str(out), "--records", str(tmp_path / "records")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "resdropnet_t none" in printed and "resdropnet_t mid 0.2" in printed and "±" in printed
    payload = json.loads((out / "ablation.json").read_text())
    assert payload["budget"]["epochs"] == 1 and "seed" not in payload["budget"] and "out" not in payload["budget"]
    results = payload["results"]
    mid, none = results["resdropnet_t mid 0.2"], results["resdropnet_t none"]
    assert mid["seeds"] == [0, 1] and len(mid["private_test"]["flip"]["values"]) == 2
    gains = [m - n for m, n in zip(mid["private_test"]["flip"]["values"], none["private_test"]["flip"]["values"])]
    assert f"{sum(gains) / 2 * 100:+.2f} ± " in printed
    assert (out / "ablation.md").exists()
    figure = cv2.imread(str(out / "ablation.png"))
    assert figure is not None and figure.shape[0] > 100 and figure.shape[1] > 500

    # --finished-only summarises what is there and trains nothing for the missing seed.
    assert main([*args, "--seeds", "0,1,2", "--finished-only"]) == 0
    assert json.loads((out / "ablation.json").read_text())["results"]["resdropnet_t none"]["seeds"] == [0, 1]
    assert not (out / "resdropnet_t_none" / "seed2").exists()

    # The kept records outlive the run folders: a later run with none of them trains nothing again.
    shutil.rmtree(out)
    assert main(args) == 0
    assert not (out / "resdropnet_t_none").exists()
    assert json.loads((out / "ablation.json").read_text())["results"] == results == summarise_records(tmp_path / "records")


def test_records_of_different_recipes_are_not_summarised_together(tmp_path):
    def write(label, seed, lr):
        config = {"model": "resdropnet_t", "model_overrides": {}, "seed": seed, "lr": lr, "out": f"runs/{seed}"}
        record = {"config": config, "machine": {"cpu": "test CPU"}, "precision": "32", "train_wall_seconds": 60.0,
                  "public_test_accuracy": {"none": 0.5}, "private_test_accuracy": {"none": 0.5}}
        path = tmp_path / label / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))

    write("resdropnet_t_mid_0.1", 0, 0.002)
    write("resdropnet_t_mid_0.1", 1, 0.002)
    assert summarise_records(tmp_path)["resdropnet_t mid 0.1"]["seeds"] == [0, 1]  # the registry's default placement
    write("resdropnet_t_mid_0.1", 2, 0.1)
    with pytest.raises(ValueError, match="different recipes"):
        summarise_records(tmp_path)


def test_ablation_table_compares_each_model_with_its_own_no_dropout_run():
    def variant(accuracy):
        scores = {"none": summarise([accuracy]), "flip": summarise([accuracy])}
        return {"seeds": [0], "train_minutes": summarise([1.0]), "trained_on": ["test CPU, 32"], "public_test": scores,
                "private_test": scores}

    results = {"resdropnet_t none": variant(0.60), "resdropnet_t mid 0.1": variant(0.61),
               "resdropnet_s none": variant(0.65), "resdropnet_s mid 0.1": variant(0.68)}
    rows = {line.split(" | ")[0].strip("| "): line for line in ablation_table(results).splitlines()[2:6]}
    assert "| +1.00 |" in rows["resdropnet_t mid 0.1"] and "| +3.00 |" in rows["resdropnet_s mid 0.1"]
    assert "| — |" in rows["resdropnet_s none"]


def test_a_run_resumed_on_the_same_machine_trained_on_one_machine():
    from resdropnet.training.ablation import trained_on

    def segment(machine, precision, epochs):
        return {"machine": machine, "precision": precision, "seconds": 60.0 * epochs, "epochs": epochs}

    cpu = [segment("AMD EPYC (AVX2)", "32-true", 5), segment("AMD EPYC (AVX2)", "32-true", 4)]
    assert trained_on({"segments": cpu}) == "AMD EPYC (AVX2), 32-true"
    moved = [*cpu, segment("NVIDIA H100", "bf16-mixed", 1)]
    assert trained_on({"segments": moved}) == "AMD EPYC (AVX2), 32-true (9 epochs) then NVIDIA H100, bf16-mixed (1 epoch)"
