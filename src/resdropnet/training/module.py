"""The LightningModule: augmentation, loss, metrics, optimiser and schedule around a ResDropNet."""

import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Timer
from torchmetrics.classification import MulticlassAccuracy

from resdropnet.models import create_model
from resdropnet.training.augment import BatchAugment, mix_batch, to_unit_float
from resdropnet.training.config import TrainConfig
from resdropnet.training.resizing import parse_size_schedule, shrink, size_at
from resdropnet.training.schedules import ClockSchedule


class EmotionClassifier(pl.LightningModule):
    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.config = TrainConfig(**config)
        self.model = create_model(self.config.model, **self.config.model_overrides)
        self.augment = BatchAugment(self.config.augment)
        self.size_schedule = parse_size_schedule(self.config.size_schedule)
        num_classes = self.model.config.num_classes
        self.train_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.epoch_started = 0.0
        self.epoch_images = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.model(images)

    def configure_model(self) -> None:
        if self.config.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def training_step(self, batch, _batch_index):
        images, targets, *teacher = batch
        images = self.resize_for_progress(self.augment(images))
        smoothing = self.config.label_smoothing
        if self.config.mix != "none":
            images, targets_a, targets_b, lam = mix_batch(images, targets, self.config.mix, self.config.mix_alpha)
            logits = self(images)
            loss = lam * F.cross_entropy(logits, targets_a, label_smoothing=smoothing) + (1 - lam) * F.cross_entropy(
                logits, targets_b, label_smoothing=smoothing
            )
        else:
            logits = self(images)
            loss = F.cross_entropy(logits, targets, label_smoothing=smoothing)
        if teacher:
            loss = self.distillation_loss(logits, teacher[0], loss)
        self.train_accuracy(logits.detach(), targets)
        self.epoch_images += images.shape[0]
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train_acc", self.train_accuracy, on_step=False, on_epoch=True)
        return loss

    def resize_for_progress(self, images: torch.Tensor) -> torch.Tensor:
        """The augmented batch shrunk to the size schedule's size at this point of the run (antialiased)."""
        if not self.size_schedule:
            return images
        size = size_at(self.size_schedule, self.progress(), images.shape[-1])
        self.log("train_size", float(size), on_step=False, on_epoch=True)
        return shrink(images, size)

    def progress(self) -> float:
        """The share of the run done: of the time budget, or of the planned optimiser steps."""
        if self.config.time_budget:
            return self.budget_spent()
        return self.trainer.global_step / max(int(self.trainer.estimated_stepping_batches), 1)

    def distillation_loss(self, logits: torch.Tensor, teacher_log_probs: torch.Tensor, hard_loss: torch.Tensor):
        """Hinton et al. 2015: the hard-label loss blended with KL to the teacher's temperature-softened outputs."""
        t = self.config.distill_temperature
        soft_teacher = F.log_softmax(teacher_log_probs / t, dim=1)
        soft_loss = F.kl_div(F.log_softmax(logits.float() / t, dim=1), soft_teacher, reduction="batchmean",
                             log_target=True) * t * t
        weight = self.config.distill_weight
        return (1 - weight) * hard_loss + weight * soft_loss

    def validation_step(self, batch, _batch_index):
        images, targets = batch
        logits = self(to_unit_float(images))
        self.val_accuracy(logits, targets)
        self.log("val_loss", F.cross_entropy(logits, targets), on_epoch=True, sync_dist=True)
        self.log("val_acc", self.val_accuracy, on_epoch=True, prog_bar=True)

    def on_train_epoch_start(self) -> None:
        self.epoch_started, self.epoch_images = time.perf_counter(), 0

    def on_train_epoch_end(self) -> None:
        elapsed = time.perf_counter() - self.epoch_started
        self.log("images_per_s", self.epoch_images * self.trainer.world_size / max(elapsed, 1e-9), sync_dist=False)

    def configure_optimizers(self):
        cfg = self.config
        decay, no_decay = [], []
        for parameter in self.model.parameters():
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if cfg.optimizer == "sgd":
            optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
        else:
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
        if cfg.time_budget:
            scheduler = ClockSchedule(optimizer, self.budget_spent, cfg.schedule, cfg.warmup_fraction)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        total_steps = int(self.trainer.estimated_stepping_batches)
        if cfg.schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=cfg.lr, total_steps=total_steps, pct_start=cfg.warmup_fraction
            )
        elif cfg.schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        else:
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def budget_spent(self) -> float:
        """The share of the time budget spent: Lightning's max_time timer, kept in checkpoints across a resume."""
        timer = next(c for c in self.trainer.callbacks if isinstance(c, Timer))
        return timer.time_elapsed("train") / self.config.time_budget

    # Resuming reproduces the uninterrupted run: the shuffling and augmentation draws of the next
    # epoch come from the global torch RNG, so its state travels with every checkpoint.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
