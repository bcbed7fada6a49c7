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
