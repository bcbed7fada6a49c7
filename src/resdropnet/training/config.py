"""The training recipe as one flat dataclass, read from YAML and overridden from the CLI."""

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from resdropnet.training.resizing import parse_size_schedule

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "constant")
MIXES = ("none", "mixup", "cutmix")


@dataclass
class TrainConfig:
    data: str = "../shared/data/fer2013.zip"
    model: str = "resdropnet_s"
    model_overrides: dict = field(default_factory=dict)
    out: str = "runs/default"
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # onecycle | cosine | constant
    warmup_fraction: float = 0.15
    label_smoothing: float = 0.1
    augment: float = 1.0
    size_schedule: str = ""  # progressive resizing, e.g. "32:0.3,40:0.6" (size:end of run); "" trains at 48 px
    mix: str = "none"  # none | mixup | cutmix
    mix_alpha: float = 0.2
    ema_decay: float = 0.0  # 0 turns EMA off
    seed: int = 0
    max_time: str | None = None  # DD:HH:MM:SS, as Lightning takes it
    time_budget: float = 0.0  # >0: seconds of training; the schedule runs on this clock and epochs are what fits
    precision: str = "auto"  # auto | 32 | bf16-mixed
    channels_last: bool = True
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    subset: int = 0  # >0: use only this many images per split (tests, quick checks)
    deterministic: bool = False
    threads: int = 0  # torch threads per process; 0 keeps torch's choice
    report_tta: str = "none,flip,tencrop"  # test-time augmentations the end-of-run report evaluates
    init: str = ""  # weights to start from (path or shipped name), e.g. to fine-tune `default`; "" for random
    teacher: str = ""  # weights to distil from (path or shipped name; comma-separated: an ensemble), or a targets
    # file from `resdropnet data teacher-targets`; "" for none
    distill_weight: float = 0.5  # share of the loss from matching the teacher's softened outputs
    distill_temperature: float = 2.0

    def __post_init__(self):
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("mix", MIXES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.teacher and self.mix != "none":
            raise ValueError("distillation (teacher) and mixup/cutmix cannot be combined: the teacher's targets are not mixed")
        if self.time_budget and self.max_time:
            raise ValueError("time_budget and max_time both end the run on the clock: give one")
        parse_size_schedule(self.size_schedule)
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> "TrainConfig":
        """The recipe in a YAML file, with any field overridden (e.g. data=..., out=..., epochs=...)."""
        import yaml  # here, not at the top: the CLI imports this module's lists on every start

        values = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in fields(cls)}
        for source, keys in ((str(path), set(values)), ("overrides", set(overrides))):
            if keys - known:
                raise ValueError(f"{source}: unknown key(s) {', '.join(sorted(keys - known))}")
        return cls(**{**values, **overrides})

    def to_yaml(self, path: str | Path) -> None:
        """Writes the recipe as YAML (a run folder's config.yaml), which from_yaml reads back."""
        import yaml

        Path(path).write_text(yaml.safe_dump(asdict(self), sort_keys=False))

    def to_dict(self) -> dict:
        """The recipe as a plain dict, as recorded in reports."""
        return asdict(self)
