"""Times `data prepare` on the real FER2013 archive and loading the prepared cache.

    python benchmarks/data_load.py
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import FER_ZIP, write_result  # noqa: E402

from resdropnet import data  # noqa: E402


def main() -> None:
    if not FER_ZIP.is_file():
        sys.exit(f"FER2013 archive not found at {FER_ZIP}")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        data.prepare(FER_ZIP, Path(tmp) / "cache")
        prepare_s = time.perf_counter() - started
        loads = []
        for _ in range(5):
            started = time.perf_counter()
            arrays = data.load(Path(tmp) / "cache")
            loads.append(time.perf_counter() - started)
    write_result("data_load", {
        "num_images": len(arrays),
        "prepare_from_zip_s": prepare_s,
        "cache_load_s_median": statistics.median(loads),
        "cache_load_s_max": max(loads),
    })


if __name__ == "__main__":
    main()
