"""The in-memory form of FER2013 that every reader returns and training consumes."""

from dataclasses import dataclass, field

import numpy as np

from resdropnet.data.errors import BadRecord
from resdropnet.labels import EMOTIONS, IMAGE_SIZE, SPLITS


@dataclass
class FerArrays:
    images: np.ndarray  # uint8, N x 48 x 48
    labels: np.ndarray  # uint8, N, in EMOTIONS order
    splits: np.ndarray  # uint8, N, in SPLITS order
    notes: list[str] = field(default_factory=list)
    skipped: list[BadRecord] = field(default_factory=list)

    def __post_init__(self):
        n = len(self.images)
        if self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 N x {IMAGE_SIZE} x {IMAGE_SIZE}, got {self.images.dtype} {self.images.shape}")
        if len(self.labels) != n or len(self.splits) != n:
            raise ValueError("images, labels and splits must have the same length")

    def __len__(self) -> int:
        return len(self.images)

    def split(self, name: str, at_most: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of one split: 'train', 'val' or 'test'; with at_most, the deterministic subset of at most
        that many that training's --subset takes (a teacher targets file is tied to exactly those faces)."""
        mask = self.splits == SPLITS.index(name)
        return take_subset(self.images[mask], self.labels[mask], at_most)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and class, with totals."""
        table = {}
        for split_id, split_name in enumerate(SPLITS):
            labels = self.labels[self.splits == split_id]
            per_class = np.bincount(labels, minlength=len(EMOTIONS))
            row = {emotion: int(per_class[i]) for i, emotion in enumerate(EMOTIONS)}
            row["total"] = int(per_class.sum())
            table[split_name] = row
        return table


def counts_table(counts: dict[str, dict[str, int]]) -> str:
    """A fixed-width table of images per split and class."""
    columns = [*EMOTIONS, "total"]
    lines = ["split  " + " ".join(f"{c:>8}" for c in columns)]
    for split_name, row in counts.items():
        lines.append(f"{split_name:<6} " + " ".join(f"{row[c]:>8,}" for c in columns))
    return "\n".join(lines)


def take_subset(images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0):
    """A deterministic random subset of at most count rows."""
    if count <= 0 or count >= len(images):
        return images, labels
    rows = np.sort(np.random.default_rng(seed).permutation(len(images))[:count])
    return images[rows], labels[rows]
