"""Batched augmentation of uint8 face batches: one call per batch, no per-image Python loop."""

import kornia.augmentation as K
import torch
from torch import nn


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W (or N x 1 x H x W) to float N x 1 x H x W in [0, 1]."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    return images.float().div_(255)


class BatchAugment(nn.Module):
    """Crop with padding, flip, small rotation/scale/translation, random erasing.

    strength scales the geometric ranges and the erasing probability; 0 turns all off.
    """

    def __init__(self, strength: float = 1.0, image_size: int = 48):
        super().__init__()
        self.strength = strength
        if strength <= 0:
            self.pipeline = nn.Identity()
            return
        pad = max(1, round(4 * strength))
        self.pipeline = K.AugmentationSequential(
            K.RandomCrop((image_size, image_size), padding=pad, padding_mode="reflect"),
            K.RandomHorizontalFlip(),
            K.RandomAffine(degrees=10 * strength, translate=(0.05 * strength, 0.05 * strength),
                           scale=(1 - 0.1 * strength, 1 + 0.1 * strength), padding_mode="reflection", p=0.5),
            K.RandomErasing(scale=(0.02, 0.15 * strength + 0.02), ratio=(0.3, 3.3), p=min(0.5 * strength, 1.0)),
        )

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pipeline(to_unit_float(images))


def mix_batch(images: torch.Tensor, targets: torch.Tensor, mode: str, alpha: float):
    """Mixup or cutmix: returns mixed images, both targets and the mixing weight of the first."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(images.shape[0], device=images.device)
    if mode == "mixup":
        mixed = images * lam + images[order] * (1 - lam)
    elif mode == "cutmix":
        h, w = images.shape[-2:]
        cut_h, cut_w = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        mixed = images.clone()
        mixed[..., y0:y1, x0:x1] = images[order][..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        raise ValueError(f"mix mode must be 'mixup' or 'cutmix', got {mode!r}")
    return mixed, targets, targets[order], lam
