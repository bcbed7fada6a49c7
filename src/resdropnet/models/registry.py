"""One registry of named ResDropNet configurations, each with a dropout-off twin."""

from dataclasses import replace

from resdropnet.models.resdropnet import ResDropNet, ResDropNetConfig

MODEL_CONFIGS: dict[str, ResDropNetConfig] = {}
DESCRIPTIONS: dict[str, str] = {}


def register(name: str, config: ResDropNetConfig, description: str) -> None:
    """Registers name and its twin name + '_nodrop': the same ResNet with block dropout off."""
    MODEL_CONFIGS[name] = config
    DESCRIPTIONS[name] = description
    MODEL_CONFIGS[f"{name}_nodrop"] = replace(config, drop_placement="none", drop_rate=0.0)
    DESCRIPTIONS[f"{name}_nodrop"] = f"{name} with dropout inside the blocks off (the ablation baseline)"


register(
    "resdropnet_t",
    ResDropNetConfig(widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), drop_rate=0.1),
    "tiny: for tests and quick checks",
)
register(
    "resdropnet_xs",
    ResDropNetConfig(widths=(24, 48, 96, 192), blocks=(1, 1, 1, 1), drop_rate=0.1),
    "extra small: the distilled model for fast inference",
)
register(
    "resdropnet_xs_rep",
    ResDropNetConfig(widths=(24, 48, 96, 192), blocks=(1, 1, 1, 1), drop_rate=0.1, reparam=True),
    "resdropnet_xs trained with a 1x1 branch beside each 3x3 convolution, folded away for inference",
)
register(
    "resdropnet_xs_deep",
    ResDropNetConfig(widths=(16, 32, 80, 160), blocks=(1, 1, 2, 2), drop_rate=0.1),
    "resdropnet_xs's cost with its compute moved from the 48x48 stage to two more blocks at 12x12 and 6x6",
)
register(
    "resdropnet_s",
    ResDropNetConfig(widths=(32, 64, 128, 256), blocks=(2, 2, 2, 2), drop_rate=0.1, head_dropout=0.2),
    "small, CPU-friendly: `default`'s model and the fast recipe's",
)
register(
    "resdropnet_w",
    ResDropNetConfig(widths=(48, 96, 192, 384), blocks=(2, 2, 2, 2), drop_rate=0.1, head_dropout=0.2),
    "wide: 1.5x resdropnet_s's widths, its weights stored in fp16 to stay under the 20 MB cap",
)
register(
    "resdropnet_m",
    ResDropNetConfig(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), drop_rate=0.1, head_dropout=0.2),
    "ResNet-18 widths: for experiments, over the 20 MB cap even in fp16 (22 MB)",
)


def list_models() -> list[str]:
    """The registered model names, each followed by its `_nodrop` twin."""
    return list(MODEL_CONFIGS)


def model_config(name: str, **overrides) -> ResDropNetConfig:
    """The registered config of name, with any field overridden; KeyError names the registered ones."""
    if name not in MODEL_CONFIGS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(MODEL_CONFIGS)}")
    return replace(MODEL_CONFIGS[name], **overrides)


def create_model(name: str, **overrides) -> ResDropNet:
    """A fresh model from a registered configuration, with any field overridden."""
    return ResDropNet(model_config(name, **overrides))
