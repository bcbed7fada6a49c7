"""What machine a figure was measured on: CPU model, core count, library versions."""

import functools
import os
import platform


@functools.cache
def cpuinfo() -> dict[str, str]:
    """The first CPU's /proc/cpuinfo fields ("model name", "cpu family", ...), read once; empty where there is none."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if not line.strip():
                    break  # the first processor's block ends at the first blank line
                name, _, value = line.partition(":")
                fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpuinfo_field(name: str) -> str | None:
    """One field of the first CPU's /proc/cpuinfo ("model name", "cpu family"); None where there is none."""
    return cpuinfo().get(name) or None


def cpu_model() -> str:
    return cpuinfo_field("model name") or platform.processor() or "unknown CPU"


def cpu_generation() -> str | None:
    """'family F model M' of the CPU: two machines both named "AMD EPYC" can be generations apart (2x in training
    speed), and the model name alone does not tell them apart."""
    family, model = cpuinfo_field("cpu family"), cpuinfo_field("model")
    return f"family {family} model {model}" if family and model else None


def machine_info() -> dict:
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}
    if generation := cpu_generation():
        info["cpu_generation"] = generation
    try:
        import torch
    except ImportError:
        return {**info, "torch": None}
    # The CPU's vector extensions decide whether bf16 autocast runs natively (AVX512-BF16, AMX) or falls back to fp32:
    # a 2-3x difference in training time between two "2-core AMD EPYC" machines.
    info = {**info, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_bf16": cpu_has_bf16()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def cpu_has_bf16() -> bool:
    import torch

    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def bf16_where_native(device_type: str) -> bool:
    """Whether bf16 autocast pays on this device type: a CUDA GPU, or a CPU with native bf16 (emulated bf16 on an AVX2
    CPU is several times slower than fp32)."""
    return device_type == "cuda" or cpu_has_bf16()


def cpu_label(info: dict) -> str:
    """The CPU of a machine_info() dict, with its vector capability (recorded since 2026-11-25) and its family and
    model (since 2026-12-05) where recorded."""
    details = [info[key] for key in ("cpu_capability", "cpu_generation") if info.get(key)]
    return f"{info['cpu']} ({', '.join(details)})" if details else info["cpu"]


def machine_description(info: dict | None = None) -> str:
    """'N cores of CPU (capability)' for a machine_info() dict, this machine's by default."""
    info = info or machine_info()
    return f"{info['cores']} cores of {cpu_label(info)}"


def device_label(device, world_size: int = 1) -> str:
    """What a torch device computes on: the GPU's name for CUDA, else the CPU with its capability."""
    import torch

    if torch.device(device).type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{world_size} x {name}" if world_size > 1 else name
    info = machine_info()
    label = machine_description(info)
    if info["torch_threads"] < info["cores"]:  # e.g. two runs side by side, each on its own core
        label += f", {info['torch_threads']} of {info['cores']} threads"
    # CPU DDP processes share the one CPU: "2 x CPU" would read as two machines.
    return f"{label}, {world_size} processes" if world_size > 1 else label


def onnx_session_options(threads: int = 0):
    """onnxruntime options for our CPU sessions. Spinning is off: the detector's and the classifier's thread pools
    take turns on every photo, and a pool spinning after its run held the cores the other needed (on 2 cores,
    end to end 55-60 ms a photo with spinning, 45-49 ms without)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options
