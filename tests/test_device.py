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


def test_the_plan_gives_the_ablation_its_epochs_first_and_the_accurate_recipe_the_rest(tmp_path):
    plan_epochs = load_script("device/plan_epochs.py")
    # The H200 call of 2026-11-26: 6,421 images/s from one probe process, 22,300 from four, LIMIT 500,
    # five ablation runs beside `accurate`: 48 epochs, which took 390 s.
    assert plan_epochs.plan(["accurate"], {128: 6421}, 22300, 500, pending_ablation_runs=5) == [("accurate", 48, "")]
    # With the ablation done, each variant goes as fast as one process can at its batch size.
    rows = plan_epochs.plan(["accurate", "accurate_b512_mixup"], {128: 6421, 512: 20000}, 22300, 560, pending_ablation_runs=0)
    assert rows == [("accurate", 55, ""), ("accurate_b512_mixup", 174, "--batch-size 512 --lr 0.004 --mix mixup")]
    # Without a probe at batch 512, it is planned at batch 128's rate: too few epochs, never too many.
    assert plan_epochs.plan(["accurate_b512"], {128: 6421}, 22300, 560, 0) == [("accurate_b512", 55, "--batch-size 512 --lr 0.004")]
    assert plan_epochs.plan(["accurate"], {128: 10**6}, 10**6, 560, 0)[0][1] == plan_epochs.MAX_EPOCHS


def test_the_plan_reads_the_probes_and_names_what_is_missing(tmp_path):
    def probe(name: str, batch_size: int, rate: float) -> None:
        rows = [{"model": "resdropnet_s", "bf16_images_per_s": rate}, {"model": "resdropnet_m", "bf16_images_per_s": 1}]
        (tmp_path / f"{name}.json").write_text(json.dumps({"batch_size": batch_size, "rows": rows}))

    def planned(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(PROJECT_ROOT / "device" / "plan_epochs.py"), "--probes", str(tmp_path),
                               "--limit", "560", "--records", str(PROJECT_ROOT / "benchmarks" / "results" / "ablation_runs"),
                               *args], capture_output=True, text=True)

    assert "run probe.sh first" in planned("--variants", "accurate").stderr
    probe("train_throughput_cuda", 128, 7000)
    probe("train_throughput_cuda_b512", 512, 21000)
    for i, rate in enumerate([6000, 5000]):
        probe(f"train_throughput_cuda_x4_{i}", 128, rate)
    plan_epochs = load_script("device/plan_epochs.py")
    assert plan_epochs.lone_rates(tmp_path) == {128: 7000, 512: 21000}
    assert plan_epochs.together_rate(tmp_path) == 11000
    lines = planned("--variants", "accurate_b512 accurate_mixup").stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["train", "accurate_b512"], ["train", "accurate_mixup"]]
    assert planned("--variants", "accurate", "--epochs", "3").stdout == "train\taccurate\t3\t\n"
    unknown = planned("--variants", "accurate_b1024")
    assert unknown.returncode != 0 and "unknown variant(s) accurate_b1024" in unknown.stderr


def test_the_plan_trains_only_the_ablation_runs_without_a_record(tmp_path):
    plan_epochs = load_script("device/plan_epochs.py")
    committed = PROJECT_ROOT / "benchmarks" / "results" / "ablation_runs"
    assert plan_epochs.pending_ablation_runs(["none", "mid", "post"], [0, 1, 2], committed) == []  # all nine are in
    assert plan_epochs.pending_ablation_runs(["none", "mid", "post"], [2, 3], committed) == [("none", 3), ("mid", 3), ("post", 3)]
    records = tmp_path / "records"
    (records / "resdropnet_s_mid_0.1").mkdir(parents=True)
    (records / "resdropnet_s_mid_0.1" / "seed1.json").write_text("{}")
    assert plan_epochs.pending_ablation_runs(["none", "mid"], [1], records) == [("none", 1)]
