"""Parameter and multiply-accumulate counts, measured by running one image through the model."""

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """All parameters of model, trainable or not."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, image_size: int = 48) -> int:
    """Multiply-accumulates of convolutions and linear layers for one image."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output):
        nonlocal total
        kernel = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
        total += output.numel() * kernel

    def linear_hook(module: nn.Linear, _inputs, output):
        nonlocal total
        total += output.numel() * module.in_features

    hooks = [
        m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, model.config.in_channels, image_size, image_size))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total
