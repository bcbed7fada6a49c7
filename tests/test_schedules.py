"""Schedules on the clock follow the shapes of torch's step-counted ones."""

import pytest
import torch

from resdropnet.training.config import TrainConfig
from resdropnet.training.resizing import parse_size_schedule, size_at
from resdropnet.training.schedules import ClockSchedule


def optimizer(kind: str) -> torch.optim.Optimizer:
    parameters = [torch.nn.Parameter(torch.zeros(2))]
    return torch.optim.AdamW(parameters, lr=0.002) if kind == "adamw" else torch.optim.SGD(parameters, lr=0.1, momentum=0.9)


def momentum(opt: torch.optim.Optimizer) -> float:
    group = opt.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_onecycle_on_the_clock_matches_torchs_onecycle_at_the_same_progress(kind):
    steps = 1000
    reference, clocked = optimizer(kind), optimizer(kind)
    onecycle = torch.optim.lr_scheduler.OneCycleLR(reference, max_lr=reference.param_groups[0]["lr"], total_steps=steps,
                                                   pct_start=0.15)
    progress = {"now": 0.0}
    schedule = ClockSchedule(clocked, lambda: progress["now"], "onecycle", warmup_fraction=0.15)
    for step in range(steps):
        if step % 50 == 0 or step in (149, 150, steps - 1):
            # torch's phase boundaries sit at steps 149 and 999: progress is the step over the last one of its phase
            progress["now"] = step / 149 * 0.15 if step <= 149 else 0.15 + (step - 149) / (steps - 1 - 149) * 0.85
            clocked.step()
            schedule.step()
            assert clocked.param_groups[0]["lr"] == pytest.approx(reference.param_groups[0]["lr"], rel=1e-6), step
            assert momentum(clocked) == pytest.approx(momentum(reference), rel=1e-6), step
        reference.step()
        onecycle.step()


def test_the_schedule_holds_its_end_once_the_budget_is_spent_and_saves_no_clock():
    opt = optimizer("adamw")
    schedule = ClockSchedule(opt, lambda: 1.7, "cosine", warmup_fraction=0.1)
    assert opt.param_groups[0]["lr"] == 0.0
    assert "progress" not in schedule.state_dict()
    torch.save(schedule.state_dict(), __import__("io").BytesIO())  # a checkpoint can hold it


def test_an_unknown_schedule_optimizer_or_mix_is_refused_by_name():
    for field, value in (("schedule", "step"), ("optimizer", "lamb"), ("mix", "mosaic")):
        with pytest.raises(ValueError, match=f"{field} must be one of .*, got '{value}'"):
            TrainConfig(**{field: value})


def test_a_time_budget_and_a_max_time_are_refused_together():
    with pytest.raises(ValueError, match="give one"):
        TrainConfig(time_budget=60, max_time="00:00:01:00")


def agree_across_ranks(rank: int, init_file: str, results) -> None:
    import torch.distributed as dist

    from resdropnet.training.schedules import agreed_progress

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        results[rank] = agreed_progress(0.25 + 0.5 * rank)  # rank 1's clock runs ahead
    finally:
        dist.destroy_process_group()


def test_distributed_ranks_step_with_one_progress(tmp_path):
    import torch.multiprocessing as mp

    from resdropnet.training.schedules import agreed_progress

    assert agreed_progress(0.4) == 0.4  # not distributed: its own clock
    results = mp.Manager().dict()
    mp.spawn(agree_across_ranks, args=(str(tmp_path / "rendezvous"), results), nprocs=2)
    assert dict(results) == {0: 0.75, 1: 0.75}


def test_a_size_schedule_gives_each_size_until_its_end_then_the_full_size():
    schedule = parse_size_schedule("32:0.3, 40:0.6")
    assert schedule == [(32, 0.3), (40, 0.6)]
    assert [size_at(schedule, p, 48) for p in (0.0, 0.29, 0.3, 0.59, 0.6, 1.0)] == [32, 32, 40, 40, 48, 48]
    assert parse_size_schedule("") == [] and size_at([], 0.1, 48) == 48


@pytest.mark.parametrize("text", ["40:0.3,32:0.6", "32:0.6,40:0.3", "32", "32:x", "32:1.0", "4:0.5"])
def test_a_malformed_size_schedule_is_refused_naming_it(text):
    with pytest.raises(ValueError, match="size schedule"):
        TrainConfig(size_schedule=text)
