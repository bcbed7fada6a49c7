"""Class probabilities for uint8 face batches, with optional test-time augmentation."""

import sys

import torch
import torch.nn.functional as F
from tqdm import tqdm

# flip+tencrop: the whole face and its mirror beside the ten crops (12 views). Chosen on PublicTest for `default`
# among eight combinations of shifts, crops and flips (docs/experiment-log.md, 2026-11-26).
TTA_MODES = ("none", "flip", "tencrop", "flip+tencrop")
TENCROP_SIZE = 44


def views(images: torch.Tensor, tta: str) -> list[torch.Tensor]:
    """The augmented views of a float N x 1 x H x W batch whose probabilities get averaged."""
    if tta == "none":
        return [images]
    if tta == "flip":
        return [images, images.flip(-1)]
    if tta == "tencrop":
        size, (h, w) = TENCROP_SIZE, images.shape[-2:]
        corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), ((h - size) // 2, (w - size) // 2)]
        crops = [images[..., y : y + size, x : x + size] for y, x in corners]
        crops = [F.interpolate(c, size=(h, w), mode="bilinear", align_corners=False) for c in crops]
        return crops + [c.flip(-1) for c in crops]
    if tta == "flip+tencrop":
        return views(images, "flip") + views(images, "tencrop")
    raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")


@torch.no_grad()
def predict_probabilities(model, images, tta: str = "none", batch_size: int = 512, progress: str = "") -> torch.Tensor:
    """images: uint8 N x 48 x 48 (tensor or array); returns float N x classes.

    progress: the label of a progress bar on stderr ("" for none); a pass over Training takes minutes on a CPU.
    """
    images = torch.as_tensor(images)
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    with tqdm(total=len(images), unit="face", desc=progress, disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device).unsqueeze(1).float().div(255)
            probs = torch.stack([F.softmax(model(view).float(), dim=1) for view in views(batch, tta)]).mean(0)
            outputs.append(probs.cpu())
            bar.update(len(batch))
    return torch.cat(outputs)
