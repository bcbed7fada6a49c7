"""Training images/s per registered architecture, fp32 vs bf16 autocast, on this machine.

One step = batched augmentation + forward + backward + optimiser step, channels_last, as in training.

    python benchmarks/train_throughput.py [--steps 6] [--batch-size 128]
    python benchmarks/train_throughput.py --device cuda --steps 50   # writes train_throughput_cuda.json
    python benchmarks/train_throughput.py --models resdropnet_s --image-sizes 32,40,48 --name train_throughput_sizes
"""

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from resdropnet.faces import FACE_SIZE  # noqa: E402
from resdropnet.models import count_macs, count_parameters, create_model, list_models  # noqa: E402
from resdropnet.system import device_label  # noqa: E402
from resdropnet.training.augment import BatchAugment  # noqa: E402
from resdropnet.training.resizing import shrink  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(name: str, precision: str, batch_size: int, steps: int, device: torch.device,
                      image_size: int = FACE_SIZE, warmup: int = 2) -> float:
    """Augmentation at full size, then the batch shrunk to image_size as progressive resizing does it."""
    torch.manual_seed(0)
    model = create_model(name).to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    augment = BatchAugment(1.0)
    images = torch.randint(0, 256, (batch_size, FACE_SIZE, FACE_SIZE), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 7, (batch_size,), device=device)
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            started = time.perf_counter()
        batch = shrink(augment(images), image_size).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(batch), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return batch_size * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for a GPU (its own JSON)")
    parser.add_argument("--models", default="", help="comma-separated architectures (default: all)")
    parser.add_argument("--image-sizes", default="48", help="comma-separated training image sizes (a row each)")
    parser.add_argument("--name", default="", help="result name (default: train_throughput[_DEVICE])")
    args = parser.parse_args()
    device = torch.device(args.device)
    # Twins share their architecture's speed: dropout costs nothing measurable, so time each architecture once.
    rows = []
    names = args.models.split(",") if args.models else [n for n in list_models() if not n.endswith("_nodrop")]
    for name in names:
        model = create_model(name)
        for size in map(int, args.image_sizes.split(",")):
            row = {"model": name, "image_size": size, "params": count_parameters(model),
                   "mflops": 2 * count_macs(model, size) / 1e6}
            for precision in ("fp32", "bf16"):
                row[f"{precision}_images_per_s"] = images_per_second(name, precision, args.batch_size, args.steps,
                                                                     device, size)
                print(name, size, precision, f"{row[f'{precision}_images_per_s']:.1f} images/s", flush=True)
            rows.append(row)
    name = args.name or ("train_throughput" if device.type == "cpu" else f"train_throughput_{device.type}")
    write_result(name, {"device": device_label(device), "batch_size": args.batch_size, "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()
