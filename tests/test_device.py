"""device/: the lent GPU machine gets FER2013 in a few calls; the parts are staged, joined, checked and prepared."""

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


def pack_into_calls(fer_zip: Path, tmp_path: Path, parts: str = "") -> list[Path]:
    """pack.sh's parts, each in a folder of its own as one call carries it."""
    packed = script("pack.sh", {"PACK": str(tmp_path / "pack"), "NO_WHEELS": "1", "PARTS": parts}, str(fer_zip))
    assert packed.returncode == 0, packed.stderr
    calls = []
    for part in sorted((tmp_path / "pack").glob("part*")):
        call = tmp_path / f"call-{part.name}"
        shutil.move(part, call / part.name)
        calls.append(call)
    return calls


def work_tree_bytes() -> int:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=PROJECT_ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    return sum((PROJECT_ROOT / name).stat().st_size for name in listed if name and (PROJECT_ROOT / name).is_file())


def stage(call: Path, stage_dir: Path) -> subprocess.CompletedProcess:
    return script("run.sh", {"PACK": str(call), "RESDROPNET_STAGE": str(stage_dir)}, "true")


def test_the_calls_fit_beside_the_work_tree_and_rebuild_the_zip_and_prepare_the_cache(fer_zip, tmp_path):
    calls = pack_into_calls(fer_zip, tmp_path)
    sizes = [sum(f.stat().st_size for f in call.rglob("*")) for call in calls]
    assert len(calls) >= 3  # the 72 MB zip beside a 32 MB work tree
    assert max(sizes) + work_tree_bytes() < 62 * 2**20  # 64 MiB a call, kornia's wheels (7.3 MB) left out here
    stage_dir = tmp_path / "stage"
    for call in calls[:-1]:
        staged = stage(call, stage_dir)
        assert staged.returncode == 0, staged.stderr
        assert not (stage_dir / "cache").exists()
    staged = stage(calls[-1], stage_dir)
    assert staged.returncode == 0, staged.stderr
    manifest = json.loads((stage_dir / "cache" / "manifest.json").read_text())
    assert manifest["num_images"] == 35887
    assert manifest["source_sha256"] == (calls[0] / "part0" / "fer2013.zip.sha256").read_text().strip()


def test_a_corrupt_part_is_refused_and_prepares_nothing(fer_zip, tmp_path):
    calls = pack_into_calls(fer_zip, tmp_path, parts="5")
    assert len(calls) == 5
    part = calls[1] / "part1" / "fer2013.zip.part-1"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    stage_dir = tmp_path / "stage"
    for call in calls[:-1]:
        assert stage(call, stage_dir).returncode == 0
        assert not (stage_dir / "fer2013.zip").exists()  # nothing joined before the last part
    staged = stage(calls[-1], stage_dir)
    assert staged.returncode != 0 and "FAILED" in staged.stdout + staged.stderr
    assert not (stage_dir / "cache").exists()


def planned(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "device" / "plan_runs.py"), "--runs", "/stage/runs", *args],
                          capture_output=True, text=True, cwd=PROJECT_ROOT)


def test_the_variants_train_on_the_calls_time_budget_beside_the_fixed_runs():
    # Seeds 0-2 of fast28 have records (session 12), so they are not planned again; seed 7 has none.
    lines = planned("--limit", "560", "--variants", "accurate_b512 accurate_w", "--screens", "fast28",
                    "--screen-seeds", "0 7").stdout.splitlines()
    assert [line.split("\t") for line in lines] == [
        ["fast28_mid_0.1_7", "28", "ablate --config configs/fast.yaml --epochs 28 --rates 0.1 --placements mid --seeds 7 "
                               "--ablation-out /stage/runs/fast28 --records benchmarks/results/screens/fast28"],
        ["accurate_b512", "budget", "train --config configs/accurate.yaml --out /stage/runs/accurate_b512 "
                                    "--time-budget 485 --batch-size 512 --lr 0.004"],
        ["accurate_w", "budget", "train --config configs/accurate.yaml --out /stage/runs/accurate_w "
                                 "--time-budget 485 --model resdropnet_w"]]
    # The fast32 screen: configs/fast.yaml at 32 epochs, every seed (none has a record in screens/fast32/).
    longer = planned("--limit", "560", "--variants", "", "--screens", "fast32").stdout.splitlines()
    assert [line.split("\t")[:2] for line in longer] == [[f"fast32_mid_0.1_{seed}", "32"] for seed in (0, 1, 2)]
    assert "--epochs 32 --rates 0.1 --placements mid --seeds 0 --ablation-out /stage/runs/fast32" in longer[0]
    assert planned("--limit", "560", "--variants", "accurate", "--epochs", "3").stdout == (
        "accurate\t3\ttrain --config configs/accurate.yaml --out /stage/runs/accurate --epochs 3\n")
    (ensemble,) = planned("--limit", "200", "--variants", "accurate_b512_ens", "--screens", "").stdout.splitlines()
    assert ensemble.endswith("--time-budget 125 --batch-size 512 --lr 0.004 --teacher /stage/runs/accurate_b512_kd/model.safetensors,"
                             "/stage/runs/accurate_b512_kd_s1/model.safetensors,/stage/runs/accurate_b512_kd_aug15/model.safetensors,"
                             "/stage/runs/accurate_w_b512_kd/model.safetensors")
    # Without --variants the plan trains exactly the teachers that the ensemble call distils from.
    teachers = planned("--limit", "560", "--screens", "").stdout.splitlines()
    assert [line.split("\t")[0] for line in teachers] == ["accurate_b512_kd", "accurate_b512_kd_s1", "accurate_b512_kd_aug15",
                                                          "accurate_w_b512_kd"]
    assert all("--teacher default" in line for line in teachers)
    unknown = planned("--limit", "560", "--variants", "accurate_b1024")
    assert unknown.returncode != 0 and "unknown variant(s) accurate_b1024" in unknown.stderr
    assert "no time to train" in planned("--limit", "60", "--variants", "accurate").stderr
    six = planned("--limit", "560", "--variants", "accurate accurate_w accurate_b512 accurate_b512_kd accurate_b512_aug15 "
                                                  "accurate_mixup")
    assert six.returncode != 0 and "at most 5" in six.stderr


def test_the_plan_runs_only_the_seeds_without_a_record(tmp_path):
    plan_runs = load_script("device/plan_runs.py")
    committed = PROJECT_ROOT / "benchmarks" / "results" / "ablation_runs"
    assert plan_runs.pending_seeds(["none", "mid", "post"], [0, 1, 2], committed) == []  # all nine are in
    assert plan_runs.pending_seeds(["none", "mid", "post"], [2, 3], committed) == [
        ("none", 0.1, 3), ("mid", 0.1, 3), ("post", 0.1, 3)]
    # Another rate has runs of its own (seeds 0-2 of 0.2 are in); 'none' is the same run at every rate, so it is planned once.
    assert plan_runs.pending_seeds(["none", "mid"], [0, 1, 2], committed, rates=(0.1, 0.2)) == []
    assert plan_runs.pending_seeds(["none", "mid"], [2, 3], committed, rates=(0.1, 0.2)) == [
        ("none", 0.1, 3), ("mid", 0.1, 3), ("mid", 0.2, 3)]
    records = tmp_path / "records"
    (records / "resdropnet_s_mid_0.1").mkdir(parents=True)
    (records / "resdropnet_s_mid_0.1" / "seed1.json").write_text("{}")
    assert plan_runs.pending_seeds(["none", "mid"], [1], records) == [("none", 0.1, 1)]
    ablation = planned("--limit", "560", "--variants", "", "--placements", "none", "--seeds", "3").stdout
    assert ablation == ("ablation_none_3\t24\tablate --config configs/fast.yaml --epochs 24 --rates 0.1 --placements none "
                        "--seeds 3 --ablation-out /stage/runs/ablation --records benchmarks/results/ablation_runs\n")
    rate = planned("--limit", "560", "--variants", "", "--placements", "post", "--seeds", "3", "--rates", "0.2").stdout
    assert rate == ("ablation_post_0.2_3\t24\tablate --config configs/fast.yaml --epochs 24 --rates 0.2 --placements post "
                    "--seeds 3 --ablation-out /stage/runs/ablation --records benchmarks/results/ablation_runs\n")


def test_the_summary_ranks_the_runs_by_publictest_and_averages_each_group_of_seeds(tmp_path):
    import tarfile

    def run(folder: str, public: float, private: float) -> None:
        path = tmp_path / "runs" / folder / "benchmark.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"model": "resdropnet_s", "epochs": 28, "best_epoch": 27, "train_wall_seconds": 240,
                                    "public_test_accuracy": {"none": public, "flip": public + 0.01},
                                    "private_test_accuracy": {"none": private, "flip": private + 0.01}}))

    run("accurate_b512", 0.69, 0.70)
    run("accurate_w", 0.70, 0.71)
    run("fast28/resdropnet_s_mid_0.1/seed0", 0.67, 0.69)
    run("fast28/resdropnet_s_mid_0.1/seed1", 0.68, 0.70)
    with tarfile.open(tmp_path / "results.tgz", "w:gz") as tar:
        tar.add(tmp_path / "runs", arcname="runs")
    summary = subprocess.run([sys.executable, str(PROJECT_ROOT / "device" / "summarise.py"), str(tmp_path / "results.tgz")],
                             capture_output=True, text=True)
    assert summary.returncode == 0, summary.stderr
    rows = [line for line in summary.stdout.splitlines() if line.startswith("| runs/")]
    assert [row.split(" | ")[0] for row in rows[:2]] == ["| runs/accurate_w", "| runs/accurate_b512"]
    assert "| shipped `default` | resdropnet_s | 104 | 99 | " in summary.stdout  # its best epoch counted from 1
    assert "| runs/fast28/resdropnet_s_mid_0.1 | 2 | 67.50 ± 0.71 | 68.50 ± 0.71 | 69.50 ± 0.71 | 70.50 ± 0.71 |" in summary.stdout
    (tmp_path / "empty").mkdir()
    for missing, message in (("empty", "no finished run"), ("absent.tgz", "no such file")):
        refused = subprocess.run([sys.executable, str(PROJECT_ROOT / "device" / "summarise.py"), str(tmp_path / missing)],
                                 capture_output=True, text=True)
        assert refused.returncode != 0 and message in refused.stderr
