"""device/: the lent GPU machine gets FER2013 in three calls; the parts are staged, joined, checked and prepared."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT, load_script


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


S128, S512 = ("resdropnet_s", 128), ("resdropnet_s", 512)


def test_the_plan_gives_the_fixed_runs_their_epochs_first_and_the_variants_the_rest():
    plan_epochs = load_script("device/plan_epochs.py")
    # The H200 call of 2026-11-26: 6,421 images/s from one probe process, 22,300 from four, LIMIT 500,
    # five ablation runs beside `accurate`: 48 epochs, which took 390 s.
    ablation = [plan_epochs.Run(f"ablation_{i}", 24, "resdropnet_s", "") for i in range(5)]
    assert plan_epochs.plan(["accurate"], {S128: 6421}, 22300, 500, ablation) == {"accurate": 48}
    # One process at batch 128 cannot use its half of the GPU; the batch-512 variant gets what it leaves.
    rows = plan_epochs.plan(["accurate", "accurate_b512_mixup"], {S128: 6421, S512: 20000}, 22300, 560, [])
    assert rows == {"accurate": 55, "accurate_b512_mixup": 138}
    # On a GPU with room for both, each goes as fast as one process can at its batch size.
    assert plan_epochs.plan(["accurate", "accurate_b512"], {S128: 6421, S512: 20000}, 40000, 560, []) == {
        "accurate": 55, "accurate_b512": 174}
    # Without a probe at batch 512, it is planned at batch 128's rate: too few epochs, never too many.
    assert plan_epochs.plan(["accurate_b512"], {S128: 6421}, 22300, 560, []) == {"accurate_b512": 55}
    assert plan_epochs.plan(["accurate"], {S128: 10**6}, 10**6, 560, [])["accurate"] == plan_epochs.MAX_EPOCHS


def test_a_wider_model_costs_its_flops_unless_the_probe_measured_it():
    plan_epochs = load_script("device/plan_epochs.py")
    assert 2.2 < plan_epochs.cost("resdropnet_w") < 2.3  # 1.5x the widths
    # Unprobed, it runs at resdropnet_s's rate over its cost: 25 epochs, where resdropnet_s gets 55.
    assert plan_epochs.plan(["accurate_w"], {S128: 6421}, 22300, 560, []) == {"accurate_w": 24}
    # Probed at 6,000 images/s alone, it may use that much, and pays 2.25 images of the GPU's capacity for each.
    assert plan_epochs.plan(["accurate_w"], {S128: 6421, ("resdropnet_w", 128): 6000}, 22300, 560, []) == {"accurate_w": 52}
    assert plan_epochs.plan(["accurate_w"], {S128: 6421, ("resdropnet_w", 128): 6000}, 40000, 560, []) == {"accurate_w": 52}


def test_the_plan_reads_the_probes_and_prints_one_command_per_process(tmp_path):
    def probe(name: str, batch_size: int, rate: float) -> None:
        rows = [{"model": "resdropnet_s", "bf16_images_per_s": rate}, {"model": "resdropnet_m", "bf16_images_per_s": 1}]
        (tmp_path / f"{name}.json").write_text(json.dumps({"batch_size": batch_size, "rows": rows}))

    def planned(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(PROJECT_ROOT / "device" / "plan_epochs.py"), "--probes", str(tmp_path),
                               "--limit", "560", "--runs", "/stage/runs", *args], capture_output=True, text=True,
                              cwd=PROJECT_ROOT)

    assert "run probe.sh first" in planned("--variants", "accurate").stderr
    probe("train_throughput_cuda", 128, 7000)
    probe("train_throughput_cuda_b512", 512, 21000)
    for i, rate in enumerate([6000, 5000]):
        probe(f"train_throughput_cuda_x4_{i}", 128, rate)
    for i in range(3):
        probe(f"train_throughput_cuda_b512_x3_{i}", 512, 9000)
    plan_epochs = load_script("device/plan_epochs.py")
    assert plan_epochs.lone_rates(tmp_path) == {S128: 7000, ("resdropnet_m", 128): 1, S512: 21000, ("resdropnet_m", 512): 1}
    assert plan_epochs.capacity(tmp_path) == 27000
    lines = [line.split("\t") for line in planned("--variants", "accurate_b512 accurate_mixup", "--max-time",
                                                   "00:00:08:20").stdout.splitlines()]
    assert [(name, args) for name, _epochs, args in lines] == [
        ("accurate_b512", f"train --config configs/accurate.yaml --out /stage/runs/accurate_b512 --epochs {lines[0][1]} "
                          "--batch-size 512 --lr 0.004 --max-time 00:00:08:20"),
        ("accurate_mixup", f"train --config configs/accurate.yaml --out /stage/runs/accurate_mixup --epochs {lines[1][1]} "
                           "--mix mixup --max-time 00:00:08:20")]
    assert planned("--variants", "accurate", "--epochs", "3").stdout == (
        "accurate\t3\ttrain --config configs/accurate.yaml --out /stage/runs/accurate --epochs 3\n")
    screened = planned("--screens", "fast28", "--screen-seeds", "0").stdout
    assert screened == ("fast28_mid_0\t28\tablate --config configs/fast.yaml --rates 0.1 --placements mid --seeds 0 "
                        "--ablation-out /stage/runs/fast28 --records benchmarks/results/screens/fast28 --epochs 28\n")
    unknown = planned("--variants", "accurate_b1024")
    assert unknown.returncode != 0 and "unknown variant(s) accurate_b1024" in unknown.stderr


def test_the_plan_runs_only_the_seeds_without_a_record(tmp_path):
    plan_epochs = load_script("device/plan_epochs.py")
    committed = PROJECT_ROOT / "benchmarks" / "results" / "ablation_runs"
    assert plan_epochs.pending_seeds(["none", "mid", "post"], [0, 1, 2], committed) == []  # all nine are in
    assert plan_epochs.pending_seeds(["none", "mid", "post"], [2, 3], committed) == [("none", 3), ("mid", 3), ("post", 3)]
    records = tmp_path / "records"
    (records / "resdropnet_s_mid_0.1").mkdir(parents=True)
    (records / "resdropnet_s_mid_0.1" / "seed1.json").write_text("{}")
    assert plan_epochs.pending_seeds(["none", "mid"], [1], records) == [("none", 1)]
