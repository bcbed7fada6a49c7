"""What machine a figure was measured on: CPU model, core count, library versions."""

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                        platform.processor())
    except OSError:
        return platform.processor() or "unknown CPU"


def machine_info() -> dict:
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch
    except ImportError:
        return {**info, "torch": None}
    return {**info, "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def machine_description() -> str:
    return f"{os.cpu_count()} cores of {cpu_model()}"
