"""Training for real on small subsets of FER2013: learning, resume, kill and resume, DDP, evaluation."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from conftest import PROJECT_ROOT, readme_python_block

from resdropnet.cli import main
from resdropnet.evaluation.metrics import classification_metrics
from resdropnet.system import cpu_has_bf16
from resdropnet.training.checkpoints import CheckpointError, read_checkpoint
from resdropnet.training.config import TrainConfig
from resdropnet.training.fit import train

pytestmark = pytest.mark.slow


def small_config(fer_cache, out, **overrides) -> TrainConfig:
    values = dict(data=str(fer_cache), model="resdropnet_t", out=str(out), epochs=2, batch_size=64, subset=1500,
                  optimizer="adamw", lr=0.002, weight_decay=0.05, precision="32", seed=3, deterministic=True,
                  report_tta="none")
    return TrainConfig(**{**values, **overrides})


def final_weights(run_dir) -> dict:
    return read_checkpoint(Path(run_dir) / "checkpoints" / "last.ckpt")["state_dict"]


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_short_run_learns_and_beats_chance(fer_cache, tmp_path):
    # bf16 where the CPU runs it natively; emulated bf16 (AVX2) would only make the test several times slower.
    precision = "bf16-mixed" if cpu_has_bf16() else "32"
    report = train(small_config(fer_cache, tmp_path / "run", epochs=4, subset=3000, precision=precision,
                                report_tta="none,flip"))
    rows = list(__import__("csv").DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    losses = [float(r["train_loss_epoch"]) for r in rows if r.get("train_loss_epoch")]
    assert losses[-1] < losses[0]
    test = report["test"]["none"]
    majority = max(row["support"] for row in test["per_class"].values()) / test["num_images"]
    assert test["accuracy"] > majority + 0.02, (test["accuracy"], majority)
    benchmark = __import__("json").loads((tmp_path / "run" / "benchmark.json").read_text())
    assert benchmark["epochs"] == 4 and benchmark["train_wall_seconds"] > 0
    assert benchmark["private_test_accuracy"]["none"] == test["accuracy"] and "flip" in benchmark["private_test_accuracy"]
    assert sum(b["faces"] for b in test["calibration"]) == test["num_images"]
    for name in ("report.json", "report.md", "confusion_matrix.png", "training_curves.png", "calibration.png",
                 "model.safetensors", "config.yaml"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    assert (tmp_path / "run" / "tensorboard").is_dir()


def test_a_model_card_names_where_its_run_trained_not_where_it_shipped_from():
    from resdropnet.model_card import training_machine
    from resdropnet.system import machine_description

    segments = [{"machine": "AMD EPYC (AVX2)"}, {"machine": "NVIDIA H100 80GB HBM3"}, {"machine": "NVIDIA H100 80GB HBM3"},
                {"machine": "AMD EPYC (AVX2)"}]
    assert training_machine({"segments": segments}) == "AMD EPYC (AVX2) then NVIDIA H100 80GB HBM3 then AMD EPYC (AVX2)"
    # A run from before segments: this machine, with its CPU capability and generation (two "AMD EPYC" differ).
    assert training_machine({"train_wall_seconds": 1.0}) == machine_description()
    assert f"({torch.backends.cpu.get_cpu_capability()}" in machine_description()
    assert machine_description({"cpu": "AMD EPYC", "cores": 2, "cpu_capability": "AVX512",
                                "cpu_generation": "family 26 model 2"}) == "2 cores of AMD EPYC (AVX512, family 26 model 2)"
    assert machine_description({"cpu": "AMD EPYC", "cores": 2}) == "2 cores of AMD EPYC"  # a record from before both


def test_machine_records_carry_the_family_and_model_of_the_first_cpu_in_proc_cpuinfo():
    from resdropnet.system import machine_info

    try:
        first_cpu = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        pytest.skip("no /proc/cpuinfo on this system")
    fields = dict(line.split(":", 1) for line in first_cpu.splitlines() if ":" in line)
    fields = {name.strip(): value.strip() for name, value in fields.items()}
    if "cpu family" not in fields:
        pytest.skip("this CPU's /proc/cpuinfo names no family")
    assert machine_info()["cpu_generation"] == f"family {fields['cpu family']} model {fields['model']}"


def test_a_model_card_names_teacher_runs_by_their_names_not_the_folders_they_lay_in():
    from resdropnet.model_card import distillation_sentence

    cfg = {"teacher": "/srv/gpu-box/runs/accurate_b512/model.safetensors,default,teachers/w.safetensors",
           "distill_weight": 0.5, "distill_temperature": 2.0}
    sentence = distillation_sentence(cfg)
    assert "the ensemble of 3 teachers run `accurate_b512`, `default`, `teachers/w.safetensors` (their averaged" in sentence
    assert "/srv" not in sentence
    assert "the teacher run `fast2-seed0` (its flip-averaged" in distillation_sentence(
        {**cfg, "teacher": "/srv/gpu-box/runs/fast2-seed0/model.safetensors"})


class StopAfterFirstEpoch(pl.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


class ValidationNeverImproves(pl.Callback):
    """Reports chance-level val_acc after the first epoch, so that no later epoch writes a best checkpoint."""

    def on_validation_end(self, trainer, pl_module):
        if trainer.current_epoch > 0:
            trainer.callback_metrics["val_acc"] = torch.tensor(0.0)


def test_a_time_budget_sets_the_epochs_and_anneals_the_schedule_when_time_is_up(fer_cache, tmp_path):
    # 600 faces an epoch: a few seconds each, so 20 s holds several epochs even on a slow machine
    train(small_config(fer_cache, tmp_path / "run", epochs=1, time_budget=20, subset=600, optimizer="adamw", lr=0.002))
    benchmark = json.loads((tmp_path / "run" / "benchmark.json").read_text())
    assert benchmark["epochs"] > 1  # --epochs 1 gave way to the budget
    last = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert last["epoch"] + 1 == benchmark["epochs"]
    assert last["lr_schedulers"][0]["_last_lr"][0] < 0.002 / 1000  # annealed: onecycle ends at lr / 25e4
    assert last["optimizer_states"][0]["param_groups"][0]["betas"][0] == pytest.approx(0.95)
    assert last["callbacks"]["Timer"]["time_elapsed"]["train"] >= 20  # the clock a resumed run goes on from


class InputSizes(pl.Callback):
    """Records the image size of every training batch the network itself receives."""

    def __init__(self):
        self.sizes_by_epoch: dict[int, set] = {}

    def on_fit_start(self, trainer, pl_module):
        def record(module, inputs):
            if module.training:
                self.sizes_by_epoch.setdefault(trainer.current_epoch, set()).add(tuple(inputs[0].shape[-2:]))
        pl_module.model.register_forward_pre_hook(record)


def test_progressive_resizing_trains_at_each_size_of_the_schedule_and_validates_at_48(fer_cache, tmp_path):
    # 600 faces, batch 64: 10 steps an epoch, so epoch 0 ends at progress 0.3, epoch 1 at 0.63
    sizes = InputSizes()
    report = train(small_config(fer_cache, tmp_path / "run", epochs=3, subset=600, size_schedule="24:0.32,32:0.65"),
                   callbacks=[sizes])
    assert sizes.sizes_by_epoch == {0: {(24, 24)}, 1: {(32, 32)}, 2: {(48, 48)}}
    rows = list(__import__("csv").DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    assert [float(r["train_size"]) for r in rows if r.get("train_size")] == [24.0, 32.0, 48.0]
    assert report["test"]["none"]["num_images"] == 600  # the report's evaluation runs at 48 px


def test_last_checkpoint_follows_every_epoch_without_improvement(fer_cache, tmp_path):
    train(small_config(fer_cache, tmp_path / "run", epochs=3, subset=300), callbacks=[ValidationNeverImproves()])
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt")["epoch"] == 0
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["epoch"] == 2


RESUME_SUBSET = 1200  # faces per split: an epoch lasts seconds, long enough to be killed in the middle of


def cli_train(fer_cache, out, *extra) -> list[str]:
    """small_config's run, spelled as `resdropnet train` flags."""
    return [sys.executable, "-m", "resdropnet", "train", "--data", str(fer_cache), "--model", "resdropnet_t",
            "--out", str(out), "--epochs", "2", "--batch-size", "64", "--subset", str(RESUME_SUBSET),
            "--optimizer", "adamw", "--lr", "0.002", "--weight-decay", "0.05", "--precision", "32", "--seed", "3",
            "--deterministic", "--report-tta", "none", *extra]


def test_resume_after_a_stop_or_a_sigkill_gives_the_same_weights_as_a_straight_run(fer_cache, tmp_path):
    # One straight run is the reference for both a clean stop after the first epoch (resumed in Python) and a SIGKILL
    # mid-epoch (resumed through the CLI, whose flags spell out the same config).
    straight = train(small_config(fer_cache, tmp_path / "straight", subset=RESUME_SUBSET))
    assert [s["epochs"] for s in straight["timing"]["segments"]] == [2]

    train(small_config(fer_cache, tmp_path / "split", subset=RESUME_SUBSET), callbacks=[StopAfterFirstEpoch()])
    assert read_checkpoint(tmp_path / "split" / "checkpoints" / "last.ckpt")["epoch"] == 0
    split = train(small_config(fer_cache, tmp_path / "split", subset=RESUME_SUBSET), resume=True)
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(tmp_path / "split"))
    # The wall-clock goes on across the resume, one segment (machine, precision, epochs) per start.
    assert [s["epochs"] for s in split["timing"]["segments"]] == [1, 1]
    assert split["timing"]["train_wall_seconds"] == pytest.approx(sum(s["seconds"] for s in split["timing"]["segments"]))
    assert f"({torch.backends.cpu.get_cpu_capability()}" in split["timing"]["segments"][0]["machine"]
    from resdropnet.evaluation.plots import read_epoch_metrics

    assert [e for e, _ in read_epoch_metrics(tmp_path / "split" / "logs")["val_acc"]] == [0, 1]

    out = tmp_path / "killed"
    process = subprocess.Popen(cli_train(fer_cache, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 900  # a guard against a hang, not a timing: a loaded machine may be slow
    while not last.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert last.exists(), "the first epoch wrote no last.ckpt"
    time.sleep(0.5)  # into the second epoch, which lasts seconds
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert read_checkpoint(last)["epoch"] == 0
    resumed = subprocess.run(cli_train(fer_cache, out, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(out))
    assert json.loads((out / "report.json").read_text())["best_epoch"] in (0, 1)


def test_corrupt_checkpoint_is_named_and_kept(fer_cache, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    last = out / "checkpoints" / "last.ckpt"
    last.write_bytes(b"PK\x03\x04 truncated")
    assert main(["train", "--data", str(fer_cache), "--model", "resdropnet_t", "--out", str(out), "--resume"]) == 1
    assert "last.ckpt: truncated or corrupt checkpoint" in capsys.readouterr().err
    assert last.read_bytes() == b"PK\x03\x04 truncated"
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(small_config(fer_cache, tmp_path / "fresh"), resume=True)


def ddp_flags(fer_cache, out, *extra) -> list[str]:
    return ["--data", str(fer_cache), "--model", "resdropnet_t", "--out", str(out), "--batch-size", "32",
            "--subset", "512", "--precision", "32", "--report-tta", "none", "--optimizer", "adamw", "--lr", "0.002",
            "--accelerator", "cpu", "--strategy", "ddp", "--threads", "1", *extra]


def test_ddp_with_two_cpu_processes_and_a_time_budget(fer_cache, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "resdropnet", "train", *ddp_flags(fer_cache, out, "--devices", "2", "--time-budget", "15")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "PL_DISABLE_FORK": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world_size=2" in result.stderr or "GLOBAL_RANK: 1" in result.stderr + result.stdout
    segments = json.loads((out / "report.json").read_text())["timing"]["segments"]
    assert segments[0]["machine"].endswith(", 2 processes")  # one CPU shared, not "2 x CPU"
    # the ranks' clocks agree each step (agreed_progress): it anneals and ends
    assert read_checkpoint(out / "checkpoints" / "last.ckpt")["lr_schedulers"][0]["_last_lr"][0] < 0.002 / 1000


def test_two_nodes_launched_by_torchrun_train_on_disjoint_shards_and_end_with_the_same_weights(fer_cache, tmp_path):
    """Two torchrun launches on loopback, one a node as on a cluster: `--num-nodes 2 --devices 1`."""
    probe, port = tmp_path / "probe", free_port()
    probe.mkdir()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                               "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
                               str(PROJECT_ROOT / "tests" / "ddp_probe.py"), str(probe),
                               *ddp_flags(fer_cache, tmp_path / "run", "--num-nodes", "2", "--devices", "1",
                                          "--epochs", "2", "--seed", "4")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    for node in nodes:
        _, stderr = node.communicate(timeout=600)
        assert node.returncode == 0, stderr[-3000:]
    ranks = [json.loads((probe / f"shards-{rank}.json").read_text()) for rank in (0, 1)]
    assert [(r["world_size"], r["num_nodes"]) for r in ranks] == [(2, 2), (2, 2)]
    size = ranks[0]["train_size"]
    for epoch in range(2):
        first, second = (r["epochs"][epoch] for r in ranks)
        assert len(first) == len(second) == size // 2  # each rank half of the faces, every face once
        assert sorted(first + second) == list(range(size))
    assert ranks[0]["epochs"][0] != ranks[0]["epochs"][1]  # reshuffled between epochs
    assert_same_weights(*(torch.load(probe / f"weights-{rank}.pt") for rank in (0, 1)))
    assert json.loads((tmp_path / "run" / "report.json").read_text())["test"]["none"]["accuracy"] > 0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_distillation_learns_from_the_teachers_flip_averaged_outputs(fer_cache, tmp_path, capsys):
    from resdropnet.evaluation.tta import predict_probabilities
    from resdropnet.training.datamodule import FerDataModule
    from resdropnet.weights import load_model

    datamodule = FerDataModule(str(fer_cache), subset=300, teacher="default")
    datamodule.setup()
    images, _labels, teacher_log_probs = datamodule.tensors["train"].tensors
    progress = capsys.readouterr().err  # a pass over Training takes minutes on a CPU: it shows a bar
    assert "teacher pass: 100%" in progress and f"{len(images)}/{len(images)}" in progress
    expected = predict_probabilities(load_model("default"), images, tta="flip")
    torch.testing.assert_close(teacher_log_probs.exp(), expected, atol=0.03, rtol=0)  # bf16 where native

    report = train(small_config(fer_cache, tmp_path / "student", teacher="default", distill_weight=1.0, epochs=3,
                                subset=1500))
    rows = list(__import__("csv").DictReader(open(tmp_path / "student" / "logs" / "metrics.csv")))
    losses = [float(r["train_loss_epoch"]) for r in rows if r.get("train_loss_epoch")]
    assert losses[-1] < losses[0]
    assert report["config"]["teacher"] == "default"
    test_images = datamodule.tensors["test"].tensors[0][:1500]  # PrivateTest's first 1,500: a torch pass on one thread
    student = predict_probabilities(load_model(tmp_path / "student" / "model.safetensors"), test_images).argmax(1)
    teacher = predict_probabilities(load_model("default"), test_images).argmax(1)
    agreement = (student == teacher).float().mean().item()
    teachers_top_share = torch.bincount(teacher).max().item() / len(teacher)
    assert agreement > teachers_top_share + 0.02, "the student learned nothing from the teacher beyond its commonest answer"


def test_a_teacher_targets_file_serves_students_in_place_of_the_teacher(fer_cache, tmp_path, capsys):
    from safetensors.torch import save_file

    from resdropnet.evaluation.tta import predict_probabilities
    from resdropnet.model_card import model_card
    from resdropnet.training.datamodule import FerDataModule
    from resdropnet.weights import load_model

    targets = tmp_path / "fast.targets.safetensors"
    assert main(["data", "teacher-targets", "--teacher", "fast", "--data", str(fer_cache), "--out", str(targets),
                 "--subset", "300"]) == 0
    assert f"wrote {targets}: the teacher's targets for 300 training faces" in capsys.readouterr().out
    datamodule = FerDataModule(str(fer_cache), subset=300, teacher=str(targets))
    datamodule.setup()
    images, _labels, log_probs = datamodule.tensors["train"].tensors
    expected = predict_probabilities(load_model("fast"), images, tta="flip")
    torch.testing.assert_close(log_probs.exp(), expected, atol=0.03, rtol=0)  # bf16 where native
    assert datamodule.teacher_targets == {"file": targets.name, "teacher": "the teacher `fast`"}

    report = train(small_config(fer_cache, tmp_path / "student", teacher=str(targets), epochs=1, subset=300))
    assert report["teacher_targets"] == datamodule.teacher_targets
    card = model_card(report, "resdropnet train ...", "a CPU", name="fast")
    assert f"Distilled from the teacher `fast` (its flip-averaged outputs on the training faces, read from the targets " \
           f"file `{targets.name}`;" in card

    # Targets of other faces, or not targets at all: a clear error naming the file, nothing trained.
    other = ["train", "--data", str(fer_cache), "--model", "resdropnet_t", "--epochs", "1", "--out",
             str(tmp_path / "other"), "--teacher", str(targets), "--subset", "200"]
    assert main(other) == 1
    assert f"{targets}: made for other training faces" in capsys.readouterr().err
    bad = tmp_path / "bad.safetensors"
    save_file({"log_probs": torch.zeros(300, 5)}, str(bad), metadata=dict(safe_metadata(targets)))
    assert main(other[:-4] + ["--teacher", str(bad), "--subset", "300"]) == 1
    assert f"{bad}: log_probs has shape [300, 5], expected [300, 7]" in capsys.readouterr().err
    assert not (tmp_path / "other" / "model.safetensors").exists()


def test_a_run_keeps_its_teachers_targets_and_a_resume_reuses_them_while_teacher_and_faces_are_the_same(
        fer_cache, tmp_path, monkeypatch):
    from resdropnet.data import load, take_subset
    from resdropnet.training import distillation

    report = train(small_config(fer_cache, tmp_path / "student", teacher="fast", epochs=1, subset=300))
    cache = tmp_path / "student" / "teacher.targets.safetensors"
    assert cache.is_file() and "teacher_targets" not in report  # the run ran its teacher: the card says so
    images, _labels = take_subset(*load(str(fer_cache)).split("train"), 300)
    kept, _info = distillation.training_targets("fast", images, cache)

    def teacher_pass(teacher, faces):
        return torch.full((len(faces), 7), -np.log(7.0))

    monkeypatch.setattr(distillation, "teacher_log_probs", teacher_pass)
    reused, _info = distillation.training_targets("fast", images, cache)
    torch.testing.assert_close(reused, kept)
    # Another teacher, or other faces: the teacher runs again, and the file follows it.
    for teacher, faces in (("default", images), ("fast", images[:200])):
        fresh, _info = distillation.training_targets(teacher, faces, cache)
        torch.testing.assert_close(fresh, teacher_pass(teacher, faces))
        assert distillation.read_targets_metadata(cache)["faces_sha256"] == distillation.faces_sha256(faces)


def safe_metadata(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return handle.metadata()


def test_distillation_refuses_mixup(fer_cache, tmp_path, capsys):
    args = ["train", "--data", str(fer_cache), "--out", str(tmp_path / "run"), "--teacher", "default", "--mix", "mixup"]
    assert main(args) == 1
    assert "teacher's targets are not mixed" in capsys.readouterr().err


def test_init_starts_from_the_given_weights(fer_cache, tmp_path):
    from resdropnet.weights import load_model

    # A peak rate of 1e-9 leaves the weights where --init put them; only BatchNorm's running statistics move.
    report = train(small_config(fer_cache, tmp_path / "tuned", model="resdropnet_s", init="default", epochs=1, lr=1e-9,
                                subset=300, augment=0.0))
    tuned, shipped = load_model(tmp_path / "tuned" / "model.safetensors"), load_model("default")
    convolutions = [name for name, tensor in shipped.state_dict().items() if tensor.ndim == 4]
    for name in convolutions:
        torch.testing.assert_close(tuned.state_dict()[name], shipped.state_dict()[name], atol=1e-6, rtol=0)
    assert report["test"]["none"]["accuracy"] > 0.55  # a fresh network after one epoch is near chance


def test_every_recipe_names_weights_and_targets_the_project_holds():
    from resdropnet.weights import SHIPPED_MODELS, read_metadata

    for recipe in sorted((PROJECT_ROOT / "configs").glob("*.yaml")):
        config = TrainConfig.from_yaml(recipe)
        for field in ("init", "teacher"):
            for source in filter(None, getattr(config, field).split(",")):
                if source in SHIPPED_MODELS or source.startswith("runs/"):  # runs/: the user's own runs, made first
                    continue
                assert (PROJECT_ROOT / source).is_file(), f"{recipe.name}: {field} {source} is not in the project"
        if config.init and config.init not in SHIPPED_MODELS:
            assert read_metadata(PROJECT_ROOT / config.init)["model_name"] == config.model, recipe.name


def test_init_refuses_weights_of_another_architecture(fer_cache, tmp_path, capsys):
    args = ["train", "--data", str(fer_cache), "--out", str(tmp_path / "run"), "--model", "resdropnet_t", "--init", "default"]
    assert main(args) == 1
    assert "default: --init weights do not fit the run's model" in capsys.readouterr().err


def test_metrics_equal_a_hand_computation():
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    predicted = np.array([0, 1, 1, 1, 2, 0, 2, 0])
    confidence = np.array([0.9, 0.6, 0.8, 0.7, 0.95, 0.45, 0.65, 0.4])
    probabilities = np.zeros((8, 3))
    for i, (p, c) in enumerate(zip(predicted, confidence)):
        probabilities[i] = (1 - c) / 2
        probabilities[i, p] = c
    metrics = classification_metrics(torch.tensor(probabilities, dtype=torch.float32), labels, ("a", "b", "c"), ece_bins=2)
    confusion = np.zeros((3, 3), int)
    for t, p in zip(labels, predicted):
        confusion[t, p] += 1
    assert metrics["confusion_matrix"] == confusion.tolist()
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    precision = confusion.diagonal() / confusion.sum(0)
    recall = confusion.diagonal() / confusion.sum(1)
    f1 = 2 * precision * recall / (precision + recall)
    for i, name in enumerate("abc"):
        assert metrics["per_class"][name]["precision"] == pytest.approx(precision[i])
        assert metrics["per_class"][name]["recall"] == pytest.approx(recall[i])
        assert metrics["per_class"][name]["f1"] == pytest.approx(f1[i])
    assert metrics["macro_f1"] == pytest.approx(f1.mean())
    correct = predicted == labels
    ece = 0.0
    for low, high in ((0.0, 0.5), (0.5, 1.0)):
        in_bin = (confidence >= low) & (confidence < high)
        if in_bin.any():
            ece += in_bin.mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    assert metrics["ece"] == pytest.approx(ece, abs=1e-6)
    assert [(b["low"], b["high"], b["faces"]) for b in metrics["calibration"]] == [(0.0, 0.5, 2), (0.5, 1.0, 6)]
    high = metrics["calibration"][1]
    assert high["confidence"] == pytest.approx(confidence[confidence > 0.5].mean())
    assert high["accuracy"] == pytest.approx(correct[confidence > 0.5].mean())
    gaps = sum(b["faces"] / 8 * abs(b["confidence"] - b["accuracy"]) for b in metrics["calibration"])
    assert gaps == pytest.approx(metrics["ece"], abs=1e-6)


def test_a_cpu_runs_label_names_its_cores_and_threads_when_fewer(monkeypatch):
    from resdropnet.system import device_label, machine_description, machine_info

    monkeypatch.setattr("os.cpu_count", lambda: 4)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert device_label("cpu") == f"{machine_description(machine_info())}, 1 of 4 threads"
        assert device_label("cpu").startswith("4 cores of ")
        torch.set_num_threads(4)
        assert device_label("cpu") == machine_description(machine_info())
    finally:
        torch.set_num_threads(threads)


def test_the_readmes_python_pipeline_runs_as_written(fer_zip, tmp_path, monkeypatch, capsys):
    """The Python guide's block of prepare, train, evaluate and export, on a small subset of the real data."""
    block = readme_python_block("TrainConfig.from_yaml")
    # One epoch instead of the recipe's 45 min clock; the teacher (`default`) and the size schedule stay.
    small = "seed=1, model='resdropnet_t', epochs=1, time_budget=0, subset=600, precision='32', report_tta='none,flip')"
    for written, here in (('"../shared/data/fer2013.zip"', repr(str(fer_zip))), ("seed=1)", small),
                          ('"configs/fast.yaml"', repr(str(PROJECT_ROOT / "configs/fast.yaml")))):
        assert block.count(written) == 1, f"the Python guide's pipeline no longer holds {written}"
        block = block.replace(written, here)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/python.md", "exec"), {})
    printed = [float(line) for line in capsys.readouterr().out.split()[-2:]]
    assert all(0 < value < 1 for value in printed)
    assert json.loads((tmp_path / "fercache" / "manifest.json").read_text())["num_images"] == 35887
    for name in ("model.safetensors", "report.json", "model.onnx", "checkpoints/last.ckpt"):
        assert (tmp_path / "runs" / "mine" / name).stat().st_size > 0
