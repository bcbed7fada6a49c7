"""The ResDropNet model family and its registry of named configurations."""

from resdropnet.models.complexity import count_macs, count_parameters
from resdropnet.models.ensemble import Ensemble
from resdropnet.models.registry import DESCRIPTIONS, create_model, list_models, model_config, register
from resdropnet.models.resdropnet import DROP_MODES, PLACEMENTS, ResDropNet, ResDropNetConfig, reparameterize

__all__ = [
    "DESCRIPTIONS", "DROP_MODES", "Ensemble", "PLACEMENTS", "ResDropNet", "ResDropNetConfig",
    "count_macs", "count_parameters", "create_model", "list_models", "model_config", "register",
    "reparameterize",
]
