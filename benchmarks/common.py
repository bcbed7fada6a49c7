"""Helpers shared by the benchmarks: where results go and what machine produced them."""

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
FER_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013.zip"


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version()}


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "date": time.strftime("%Y-%m-%d"), "machine": machine(), **payload}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
