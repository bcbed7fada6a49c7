"""Helpers shared by the benchmarks: where results go and what machine produced them."""

import json
import time
from pathlib import Path

from resdropnet.system import machine_info

RESULTS = Path(__file__).parent / "results"
FER_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013.zip"


def machine() -> dict:
    return machine_info()


def write_result(name: str, payload: dict) -> Path:
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": name, "date": time.strftime("%Y-%m-%d"), "machine": machine(), **payload}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
