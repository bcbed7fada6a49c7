"""Progressive resizing: small images early in a run, where they cost less and teach nearly as much, then the
full size, so the finished model is tuned to the size it is used at.

The CLI validates size schedules without torch (the package's inference path runs without it), so torch is imported
only where a batch is resized.
"""


def parse_size_schedule(text: str) -> list[tuple[int, float]]:
    """Progressive resizing, "32:0.3,40:0.6": train at 32 px until 30% of the run, 40 px until 60%, then at the
    full size. Sizes and ends must both rise; ends lie in (0, 1). "" is no resizing."""
    if not text.strip():
        return []
    steps = []
    for part in text.split(","):
        size, _, end = part.strip().partition(":")
        try:
            steps.append((int(size), float(end)))
        except ValueError:
            raise ValueError(f"size schedule: {part.strip()!r} is not SIZE:END (e.g. 32:0.3)") from None
    for (size, end), (next_size, next_end) in zip(steps, steps[1:]):
        if next_size <= size or next_end <= end:
            raise ValueError(f"size schedule {text!r}: sizes and ends must both rise")
    if not all(8 <= size and 0 < end < 1 for size, end in steps):
        raise ValueError(f"size schedule {text!r}: each size >= 8 px, each end between 0 and 1")
    return steps


def size_at(schedule: list[tuple[int, float]], progress: float, full_size: int) -> int:
    """The training image size at progress in [0, 1] of the run."""
    return next((size for size, end in schedule if progress < end), full_size)


def shrink(images: "torch.Tensor", size: int) -> "torch.Tensor":  # noqa: F821
    """An N x C x H x W batch resized to size x size, antialiased so that small copies keep the faces' detail."""
    import torch.nn.functional as F

    if size >= images.shape[-1]:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
