"""device/: the lent GPU machine gets FER2013 in three calls; the parts are staged, joined, checked and prepared."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT


def script(name: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    path = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env}
    return subprocess.run(["bash", str(PROJECT_ROOT / "device" / name), *args], env=path, capture_output=True, text=True)


def pack_into_calls(fer_zip: Path, tmp_path: Path) -> list[Path]:
    """pack.sh's three parts, each in a folder of its own as one call carries it."""
    packed = script("pack.sh", {"PACK": str(tmp_path / "pack"), "NO_WHEELS": "1"}, str(fer_zip))
    assert packed.returncode == 0, packed.stderr
    calls = []
    for i in range(3):
        call = tmp_path / f"call{i}"
        shutil.move(tmp_path / "pack" / f"part{i}", call / f"part{i}")
        calls.append(call)
    return calls


def stage(call: Path, stage_dir: Path) -> subprocess.CompletedProcess:
    return script("run.sh", {"PACK": str(call), "RESDROPNET_STAGE": str(stage_dir)}, "true")


def test_three_calls_rebuild_the_zip_and_prepare_the_cache(fer_zip, tmp_path):
    calls = pack_into_calls(fer_zip, tmp_path)
    sizes = [sum(f.stat().st_size for f in call.rglob("*")) for call in calls]
    assert max(sizes) < 30 * 2**20  # leaves room for the work tree within 64 MiB a call
    stage_dir = tmp_path / "stage"
    for call in calls[:2]:
        staged = stage(call, stage_dir)
        assert staged.returncode == 0, staged.stderr
        assert not (stage_dir / "cache").exists()
    staged = stage(calls[2], stage_dir)
    assert staged.returncode == 0, staged.stderr
    manifest = json.loads((stage_dir / "cache" / "manifest.json").read_text())
    assert manifest["num_images"] == 35887
    assert manifest["source_sha256"] == (calls[0] / "part0" / "fer2013.zip.sha256").read_text().strip()


def test_a_corrupt_part_is_refused_and_prepares_nothing(fer_zip, tmp_path):
    calls = pack_into_calls(fer_zip, tmp_path)
    part = calls[1] / "part1" / "fer2013.zip.part-1"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    stage_dir = tmp_path / "stage"
    for call in calls[:2]:
        assert stage(call, stage_dir).returncode == 0
    staged = stage(calls[2], stage_dir)
    assert staged.returncode != 0 and "FAILED" in staged.stdout + staged.stderr
    assert not (stage_dir / "cache").exists()


def plan_epochs_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("plan_epochs", PROJECT_ROOT / "device" / "plan_epochs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plan_gives_the_ablation_its_epochs_first_and_the_accurate_recipe_the_rest(tmp_path):
    plan_epochs = plan_epochs_module()
    # The H200 call of 2026-11-26: 22,300 images/s from four probe processes, 6,421 from one, LIMIT 500,
    # five ablation runs: 48 epochs, which took 390 s beside the five.
    assert plan_epochs.plan(22300, 6421, 500, pending_ablation_runs=5) == (["accurate"], 48)
    assert plan_epochs.plan(22300, 6421, 500, pending_ablation_runs=0) == (["accurate"], 48)  # capped by one process's rate
    variants, epochs = plan_epochs.plan(60000, 20000, 500, pending_ablation_runs=0)
    assert variants == ["accurate", "accurate_cutmix", "accurate_mixup"] and epochs == plan_epochs.MAX_EPOCHS
    assert plan_epochs.plan(1000, 1000, 500, pending_ablation_runs=5) == (["accurate"], 7)  # what one slow process can do
    for i, rate in enumerate([6000, 5000]):
        probe = {"rows": [{"model": "resdropnet_s", "bf16_images_per_s": rate}, {"model": "resdropnet_m", "bf16_images_per_s": 1}]}
        (tmp_path / f"train_throughput_cuda_x4_{i}.json").write_text(json.dumps(probe))
    (tmp_path / "train_throughput_cuda.json").write_text(json.dumps({"rows": [{"model": "resdropnet_s", "bf16_images_per_s": 7000}]}))
    assert plan_epochs.probed_rates(tmp_path) == (11000, 7000)


def test_without_a_probe_the_plan_says_what_is_missing(tmp_path):
    planned = subprocess.run([sys.executable, str(PROJECT_ROOT / "device" / "plan_epochs.py"), "--probes", str(tmp_path),
                              "--limit", "470", "--pending", "0"], capture_output=True, text=True)
    assert planned.returncode != 0 and "run probe.sh first" in planned.stderr
