"""Learning-rate schedules that run on a time budget: the schedule's progress is the share of the budget spent.

A step-counted schedule needs the number of epochs in advance; on a machine whose speed is unknown or shared
(several runs on one GPU) a guess too high is cut off mid-schedule, one too low leaves time unused. On
the clock, the run anneals exactly when its time is up, however fast it went. Same shapes as the step-counted
schedules it replaces (torch's OneCycleLR with its defaults, CosineAnnealingLR, constant).
"""

import math
from collections.abc import Callable

import torch

ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25.0, 1e4  # OneCycleLR's defaults: start at lr/25, end at lr/25e4
ONECYCLE_MOMENTUM = (0.85, 0.95)  # OneCycleLR's base and max momentum (Adam's beta1)


def cosine_between(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2 * (math.cos(math.pi * fraction) + 1)


def onecycle(progress: float, warmup_fraction: float) -> tuple[float, float]:
    """(lr factor, momentum) at progress in [0, 1]: cosine warm-up to the peak, cosine annealing after it."""
    low, high = ONECYCLE_MOMENTUM
    if progress < warmup_fraction:
        fraction = progress / warmup_fraction
        return cosine_between(1 / ONECYCLE_DIV, 1.0, fraction), cosine_between(high, low, fraction)
    fraction = (progress - warmup_fraction) / (1 - warmup_fraction)
    return cosine_between(1.0, 1 / ONECYCLE_DIV / ONECYCLE_FINAL_DIV, fraction), cosine_between(low, high, fraction)


def agreed_progress(progress: float) -> float:
    """The furthest progress over all processes of a distributed run: each rank reads its own clock, and ranks
    stepping at different rates would drift apart. Costs one scalar all-reduce per step, only when distributed."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return progress
    backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    furthest = torch.tensor([progress], dtype=torch.float64, device=backend_device)
    dist.all_reduce(furthest, op=dist.ReduceOp.MAX)
    return float(furthest.item())


class ClockSchedule(torch.optim.lr_scheduler.LRScheduler):
    """Sets every group's lr (and for onecycle its momentum) from progress(), the spent share of the budget."""

    def __init__(self, optimizer, progress: Callable[[], float], schedule: str, warmup_fraction: float):
        self.progress, self.schedule, self.warmup_fraction = progress, schedule, warmup_fraction
        super().__init__(optimizer)

    def state_dict(self) -> dict:
        return {key: value for key, value in super().state_dict().items() if key != "progress"}

    def get_lr(self) -> list[float]:
        progress = min(max(agreed_progress(self.progress()), 0.0), 1.0)
        if self.schedule == "onecycle":
            factor, momentum = onecycle(progress, self.warmup_fraction)
            for group in self.optimizer.param_groups:
                if "betas" in group:
                    group["betas"] = (momentum, group["betas"][1])
                else:
                    group["momentum"] = momentum
        elif self.schedule == "cosine":
            factor = cosine_between(1.0, 0.0, progress)
        else:
            factor = 1.0
        return [base * factor for base in self.base_lrs]
