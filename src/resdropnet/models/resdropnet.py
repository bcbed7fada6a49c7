"""ResDropNet: a ResNet for 1-channel faces whose residual blocks can hold dropout.

Dropout placement inside a block:
  none  no dropout: exactly a plain ResNet
  mid   between the two convolutions (after the first BN-ReLU)
  post  after the residual addition and its ReLU
Both feed a following BatchNorm, which sees a different variance in training and in
inference (Li et al., CVPR 2019). To avoid that shift, use drop_mode="uout" (uniform
multiplicative noise whose variance is tiny, the paper's remedy), or keep blocks at
`none` and use head_dropout, which sits after the last BatchNorm.

reparam=True trains every 3x3 convolution beside a 1x1 one (RepVGG-style, Ding et al., CVPR 2021);
`reparameterize` folds each pair and its BatchNorms into one 3x3 convolution for inference, so the
inference graph and its cost are those of the plain network.
"""

from collections import OrderedDict
from dataclasses import asdict, dataclass

import torch
from torch import nn

PLACEMENTS = ("none", "mid", "post")
DROP_MODES = ("element", "channel", "uout")
# Inputs are gray values in [0, 1]; normalising inside the model keeps exported graphs self-contained.
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25


@dataclass(frozen=True)
class ResDropNetConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    block: str = "basic"  # or "bottleneck"
    drop_rate: float = 0.1
    drop_placement: str = "mid"
    drop_mode: str = "element"
    head_dropout: float = 0.0
    drop_path: float = 0.0  # stochastic depth, the comparison option
    reparam: bool = False  # a 1x1 branch beside every 3x3 convolution in training, folded away for inference
    num_classes: int = 7
    in_channels: int = 1

    def __post_init__(self):
        if self.drop_placement not in PLACEMENTS:
            raise ValueError(f"drop_placement must be one of {PLACEMENTS}, got {self.drop_placement!r}")
        if self.drop_mode not in DROP_MODES:
            raise ValueError(f"drop_mode must be one of {DROP_MODES}, got {self.drop_mode!r}")
        if self.block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {self.block!r}")
        if len(self.widths) != len(self.blocks):
            raise ValueError("widths and blocks need one entry per stage")
        for name in ("drop_rate", "head_dropout", "drop_path"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict:
        """The config as a plain dict, as stored in a weights file's metadata."""
        return asdict(self)


class TrainingNoise(nn.Module):
    """A layer that perturbs its input in training mode only, by an amount set by rate."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        return self.perturb(x)

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class UniformDropout(TrainingNoise):
    """'Uout' (Li et al., CVPR 2019): x * (1 + U(-rate, rate)); variance-stable before BN."""

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1 + torch.empty_like(x).uniform_(-self.rate, self.rate))


class DropPath(TrainingNoise):
    """Stochastic depth: drops a sample's whole residual branch."""

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        keep = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(1 - self.rate)
        return x * keep / (1 - self.rate)


def make_dropout(mode: str, rate: float) -> nn.Module:
    if rate == 0:
        return nn.Identity()
    return {"element": nn.Dropout, "channel": nn.Dropout2d, "uout": UniformDropout}[mode](rate)


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out_ch))


def folded_conv_bn(conv_bn_pair: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel and bias of one convolution that computes conv followed by BatchNorm in eval mode."""
    conv, bn = conv_bn_pair
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return conv.weight * scale[:, None, None, None], bn.bias - bn.running_mean * scale


class RepConvBN(nn.Module):
    """A 3x3 conv-BN and a 1x1 conv-BN summed; `reparameterize` merges them into one 3x3 convolution."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv3 = conv_bn(in_ch, out_ch, 3, stride)
        self.conv1 = conv_bn(in_ch, out_ch, 1, stride)
        self.fused: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        return self.conv3(x) + self.conv1(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replaces both branches by the single 3x3 convolution they equal in eval mode (in place)."""
        if self.fused is not None:
            return
        kernel3, bias3 = folded_conv_bn(self.conv3)
        kernel1, bias1 = folded_conv_bn(self.conv1)
        conv = self.conv3[0]
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, 3, conv.stride, 1, bias=True)
        # A 1x1 kernel at the centre of a 3x3 one with padding 1 reads the same pixel at every stride.
        fused.weight.copy_(kernel3 + nn.functional.pad(kernel1, (1, 1, 1, 1)))
        fused.bias.copy_(bias3 + bias1)
        self.fused = fused.to(conv.weight.device, conv.weight.dtype)
        del self.conv3, self.conv1


def conv3x3_bn(in_ch: int, out_ch: int, stride: int, config: ResDropNetConfig) -> nn.Module:
    return RepConvBN(in_ch, out_ch, stride) if config.reparam else conv_bn(in_ch, out_ch, 3, stride)


def reparameterize(model: nn.Module) -> nn.Module:
    """Folds every RepConvBN of model into one convolution (in place; inference only) and returns model."""
    for module in model.modules():
        if isinstance(module, RepConvBN):
            module.reparameterize()
    return model


class ResidualBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, config: ResDropNetConfig, drop_path: float):
        super().__init__()
        mid_rate = config.drop_rate if config.drop_placement == "mid" else 0.0
        post_rate = config.drop_rate if config.drop_placement == "post" else 0.0
        # Named layers keep state_dict keys the same for every placement (dropout has no weights).
        if config.block == "basic":
            layers = {"conv1": conv3x3_bn(in_ch, out_ch, stride, config), "relu1": nn.ReLU(inplace=True),
                      "dropout": make_dropout(config.drop_mode, mid_rate), "conv2": conv3x3_bn(out_ch, out_ch, 1, config)}
        else:
            inner = out_ch // 4
            layers = {"conv1": conv_bn(in_ch, inner, 1), "relu1": nn.ReLU(inplace=True),
                      "conv2": conv3x3_bn(inner, inner, stride, config), "relu2": nn.ReLU(inplace=True),
                      "dropout": make_dropout(config.drop_mode, mid_rate), "conv3": conv_bn(inner, out_ch, 1)}
        self.branch = nn.Sequential(OrderedDict(layers))
        self.shortcut = nn.Identity() if stride == 1 and in_ch == out_ch else conv_bn(in_ch, out_ch, 1, stride)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.post = make_dropout(config.drop_mode, post_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(torch.relu(self.shortcut(x) + self.drop_path(self.branch(x))))


class ResDropNet(nn.Module):
    """Stem (3x3 conv at full resolution), stages halving resolution after the first, global pooling, linear head."""

    def __init__(self, config: ResDropNetConfig = ResDropNetConfig()):
        super().__init__()
        self.config = config
        self.stem = nn.Sequential(conv3x3_bn(config.in_channels, config.widths[0], 1, config), nn.ReLU(inplace=True))
        total_blocks = sum(config.blocks)
        blocks, in_ch, index = [], config.widths[0], 0
        for stage, (width, count) in enumerate(zip(config.widths, config.blocks)):
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                rate = config.drop_path * index / max(total_blocks - 1, 1)
                blocks.append(ResidualBlock(in_ch, width, stride, config, rate))
                in_ch, index = width, index + 1
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_dropout = nn.Dropout(config.head_dropout) if config.head_dropout > 0 else nn.Identity()
        self.head = nn.Linear(in_ch, config.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal initialisation of every convolution (BatchNorm and Linear keep torch's defaults)."""
        # No zero-init of the branches' last BN: measured on 6,000 FER2013 faces it slowed early learning.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: gray values in [0, 1], N x 1 x H x W."""
        x = (x - PIXEL_MEAN) / PIXEL_STD
        return torch.flatten(self.pool(self.blocks(self.stem(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N x num_classes) for gray faces in [0, 1], N x 1 x H x W."""
        return self.head(self.head_dropout(self.features(x)))
