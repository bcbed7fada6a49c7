"""Trains a ResDropNet with Lightning and writes the run folder: config, checkpoints, logs, weights, report."""

import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging, LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from resdropnet.system import cpu_has_bf16, device_label
from resdropnet.training.checkpoints import AtomicCheckpointIO, CheckpointError, read_checkpoint
from resdropnet.training.config import TrainConfig
from resdropnet.training.datamodule import FerDataModule
from resdropnet.training.module import EmotionClassifier


def resolve_precision(precision: str, accelerator: str) -> str:
    """bf16 mixed precision where the hardware has it, fp32 otherwise."""
    if precision != "auto":
        return precision
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if cpu_has_bf16():
        return "bf16-mixed"
    warnings.warn(f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bf16: training runs in fp32, "
                  "2-3x slower than with AVX512-BF16 or AMX", stacklevel=2)
    return "32"


def parse_devices(devices: str):
    return int(devices) if str(devices).isdigit() else devices


class WallClock(Callback):
    """Training wall-clock time, kept in checkpoints so a resumed run goes on counting.

    Each start or resume opens a segment with its machine and precision: a run resumed on another machine says so.
    """

    def __init__(self):
        self.epoch_started = 0.0
        self.segments = []

    @property
    def elapsed(self) -> float:
        return sum(segment["seconds"] for segment in self.segments)

    def on_train_start(self, trainer, pl_module) -> None:
        if self.segments and self.segments[-1]["epochs"] is None:  # the legacy segment load_state_dict made
            self.segments[-1]["epochs"] = trainer.current_epoch
        self.segments.append({"machine": device_label(pl_module.device, trainer.world_size),
                              "precision": str(trainer.precision), "seconds": 0.0, "epochs": 0})

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epoch_started = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and self.epoch_started:
            self.segments[-1]["seconds"] += time.perf_counter() - self.epoch_started
            self.segments[-1]["epochs"] += 1
            self.epoch_started = 0.0

    def state_dict(self) -> dict:
        return {"segments": self.segments}

    def load_state_dict(self, state_dict: dict) -> None:
        if "segments" in state_dict:
            self.segments = state_dict["segments"]
        else:  # a checkpoint from before segments were kept: its time, machine unknown, epochs filled in on start
            self.segments = [{"machine": "unrecorded machine", "precision": "unrecorded",
                              "seconds": state_dict["elapsed"], "epochs": None}]


def build_trainer(cfg: TrainConfig, out: Path, extra_callbacks=()) -> pl.Trainer:
    callbacks = [
        *extra_callbacks,
        ModelCheckpoint(dirpath=out / "checkpoints", filename="best", monitor="val_acc", mode="max"),
        # Lightning 2.6 writes save_last's last.ckpt only in epochs that also write a best checkpoint, so a
        # stopped run could lose every epoch since its best one: the latest epoch gets a checkpoint of its own.
        ModelCheckpoint(dirpath=out / "checkpoints", filename="last", monitor=None, save_top_k=1,
                        enable_version_counter=False),
        LearningRateMonitor(logging_interval="epoch"),
        TQDMProgressBar(refresh_rate=10),
        WallClock(),
    ]
    if cfg.ema_decay > 0:
        callbacks.append(EMAWeightAveraging(decay=cfg.ema_decay))
    return pl.Trainer(
        default_root_dir=out,
        max_epochs=-1 if cfg.time_budget else cfg.epochs,
        max_time={"seconds": cfg.time_budget} if cfg.time_budget else cfg.max_time,
        precision=resolve_precision(cfg.precision, cfg.accelerator),
        accelerator=cfg.accelerator,
        devices=parse_devices(cfg.devices),
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        deterministic=cfg.deterministic,
        callbacks=callbacks,
        logger=[CSVLogger(out, name="logs", version=""), TensorBoardLogger(out, name="tensorboard", version="")],
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,
        enable_model_summary=False,
    )


def best_checkpoint(trainer: pl.Trainer) -> str:
    return next(c for c in trainer.checkpoint_callbacks if c.monitor == "val_acc").best_model_path


def keep_previous_log(logs: Path) -> None:
    """Lightning's CSV logger deletes metrics.csv when it starts; a resumed run keeps it as metrics.partN.csv."""
    current = logs / "metrics.csv"
    if current.exists():
        parts = len(list(logs.glob("metrics.part*.csv")))
        current.rename(logs / f"metrics.part{parts:03d}.csv")


def load_initial_weights(model, weights: str) -> None:
    """Copies weights (a path or shipped name) into model: same layers and shapes; dropout may differ."""
    from resdropnet.weights import WeightsError, load_model

    try:
        model.load_state_dict(load_model(weights, for_inference=False).state_dict())
    except RuntimeError as error:
        raise WeightsError(f"{weights}: --init weights do not fit the run's model ({error})") from None


def train(cfg: TrainConfig, resume: bool = False, callbacks=()) -> dict | None:
    """Fits, then (on rank 0) exports the best weights and reports on PrivateTest; returns the report."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "checkpoints" / "last.ckpt"
    ckpt_path = None
    if resume:
        if not last.exists():
            raise CheckpointError(f"{last}: nothing to resume from")
        read_checkpoint(last)
        ckpt_path = str(last)
        keep_previous_log(out / "logs")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg.to_yaml(out / "config.yaml")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = FerDataModule(cfg.data, batch_size=cfg.batch_size, subset=cfg.subset, teacher=cfg.teacher,
                               teacher_cache=out / "teacher.targets.safetensors")
    module = EmotionClassifier(cfg.to_dict())
    if cfg.init and not resume:  # a resumed run's weights come from its checkpoint
        load_initial_weights(module.model, cfg.init)
    trainer = build_trainer(cfg, out, callbacks)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    if not trainer.is_global_zero:
        return None
    from resdropnet.evaluation.report import finish_run

    clock = next(c for c in trainer.callbacks if isinstance(c, WallClock))
    timing = {"train_wall_seconds": clock.elapsed, "epochs": trainer.current_epoch, "precision": trainer.precision,
              "segments": clock.segments}
    return finish_run(out, best_checkpoint(trainer), datamodule, timing, cfg.report_tta.split(","),
                      trainer.strategy.root_device)
