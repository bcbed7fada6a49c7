"""Several models as one: the average of their class probabilities."""

import torch
from torch import nn


class Ensemble(nn.Module):
    """Returns the log of the members' mean probabilities, so that a softmax of its output is that mean."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([member(x).float().softmax(dim=1) for member in self.members]).mean(0)
        return probabilities.clamp_min(1e-12).log()
