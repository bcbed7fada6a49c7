"""The ResDropNet family: shapes, dropout behaviour, the plain-ResNet baseline, registry, save/load."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from resdropnet.models import (PLACEMENTS, ResDropNet, ResDropNetConfig, count_macs, count_parameters, create_model,
                               list_models, model_config, reparameterize)
from resdropnet.models.resdropnet import DropPath, RepConvBN, UniformDropout
from resdropnet.weights import load_model, save_model

TINY = dict(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1))


def dropout_layers(model):
    return [m for m in model.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d, UniformDropout, DropPath))]


@pytest.mark.parametrize("size", [40, 44, 48, 56, 64])
@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_output_shape_for_input_sizes(size, block):
    model = ResDropNet(ResDropNetConfig(**TINY, block=block)).eval()
    assert model(torch.rand(3, 1, size, size)).shape == (3, 7)


@pytest.mark.parametrize("placement", ["mid", "post"])
@pytest.mark.parametrize("mode", ["element", "channel", "uout"])
def test_dropout_acts_only_in_training(placement, mode):
    torch.manual_seed(0)
    model = ResDropNet(ResDropNetConfig(**TINY, drop_placement=placement, drop_mode=mode, drop_rate=0.5))
    x = torch.rand(4, 1, 48, 48)
    model.train()
    for m in model.modules():  # freeze BN statistics so only dropout can differ
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    assert not torch.allclose(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_placement_none_is_exactly_a_plain_resnet():
    plain = ResDropNet(ResDropNetConfig(**TINY, drop_placement="none", drop_rate=0.0))
    assert dropout_layers(plain) == []
    for placement in ("mid", "post"):
        dropped = ResDropNet(ResDropNetConfig(**TINY, drop_placement=placement, drop_rate=0.3))
        assert dropout_layers(dropped)
        assert plain.state_dict().keys() == dropped.state_dict().keys()
        dropped.load_state_dict(plain.state_dict())
        x = torch.rand(2, 1, 48, 48)
        assert torch.equal(plain.eval()(x), dropped.eval()(x))
    # The registry's twin differs from its model in block dropout only.
    for name in list_models():
        if name.endswith("_nodrop"):
            twin, base = model_config(name), model_config(name.removesuffix("_nodrop"))
            assert twin.drop_placement == "none" and twin.drop_rate == 0
            assert (twin.widths, twin.blocks, twin.head_dropout) == (base.widths, base.blocks, base.head_dropout)
            assert [repr(m) for m in dropout_layers(create_model(name))] == [repr(m) for m in dropout_layers(ResDropNet(twin))]


def test_stochastic_depth_and_head_dropout_are_options():
    model = ResDropNet(ResDropNetConfig(**TINY, drop_placement="none", drop_path=0.2, head_dropout=0.3))
    kinds = {type(m) for m in dropout_layers(model)}
    assert kinds == {DropPath, nn.Dropout}


def test_eval_outputs_are_deterministic():
    model = create_model("resdropnet_t").eval()
    x = torch.rand(5, 1, 48, 48)
    assert torch.equal(model(x), model(x))


def test_registry_round_trip():
    for name in list_models():
        model = create_model(name)
        assert model.config == model_config(name)
        assert ResDropNet(model.config).config == model.config
    assert create_model("resdropnet_s", drop_rate=0.3, drop_placement="post").config.drop_rate == 0.3
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(ValueError, match="drop_placement"):
        create_model("resdropnet_t", drop_placement="inside")
    assert {"resdropnet_s", "resdropnet_s_nodrop", "resdropnet_m", "resdropnet_m_nodrop"} <= set(list_models())
    assert set(PLACEMENTS) == {"none", "mid", "post"}


def test_saved_and_loaded_model_gives_identical_outputs(tmp_path):
    model = scrambled_batchnorms(create_model("resdropnet_t", drop_mode="channel"))
    path = save_model(model, tmp_path / "m.safetensors", {"note": "test"})
    loaded = load_model(path)
    assert loaded.config == model.config
    x = torch.rand(4, 1, 48, 48)
    assert torch.equal(model(x), loaded(x))


def test_a_model_too_large_for_fp32_is_stored_in_fp16_and_loads_back_to_fp32(tmp_path):
    from safetensors import safe_open

    from resdropnet.weights import FP16_ABOVE_BYTES

    model = create_model("resdropnet_w").eval()
    assert count_parameters(model) * 4 > FP16_ABOVE_BYTES
    path = save_model(model, tmp_path / "w.safetensors")
    assert path.stat().st_size < count_parameters(model) * 2 + 2**20
    with safe_open(str(path), framework="pt") as handle:
        dtypes = {handle.get_tensor(name).dtype for name in handle.keys()}
    assert dtypes == {torch.float16, torch.int64}  # num_batches_tracked stays an integer
    loaded = load_model(path)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    x = torch.rand(4, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=2e-2, rtol=2e-2)


def test_truncated_weights_file_is_named(tmp_path):
    from resdropnet.weights import WeightsError

    path = save_model(create_model("resdropnet_t"), tmp_path / "m.safetensors")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="m.safetensors"):
        load_model(path)


def test_ensemble_averages_the_members_probabilities():
    from resdropnet.models import Ensemble

    torch.manual_seed(0)
    a, b = create_model("resdropnet_t").eval(), create_model("resdropnet_t").eval()
    faces = torch.rand(5, 1, 48, 48)
    with torch.no_grad():
        expected = (a(faces).softmax(1) + b(faces).softmax(1)) / 2
        torch.testing.assert_close(Ensemble([a, b])(faces).softmax(1), expected)


def scrambled_batchnorms(model):
    """Gives every BatchNorm non-trivial statistics and affine terms, as training would."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                for tensor, low, high in ((m.running_mean, -0.2, 0.2), (m.running_var, 0.3, 2.0),
                                          (m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return model.eval()


@settings(max_examples=25, deadline=None)
@given(widths=st.lists(st.integers(2, 12), min_size=1, max_size=3), block=st.sampled_from(["basic", "bottleneck"]),
       size=st.integers(9, 33), batch=st.integers(1, 3))
def test_reparameterizing_folds_the_branches_without_changing_the_outputs(widths, block, size, batch):
    widths = [4 * w for w in widths]  # bottlenecks divide widths by 4
    model = scrambled_batchnorms(ResDropNet(ResDropNetConfig(widths=tuple(widths), blocks=(1,) * len(widths),
                                                             block=block, reparam=True)))
    x = torch.rand(batch, 1, size, size)
    with torch.no_grad():
        trained = model(x)
        folded = reparameterize(model)(x)
    assert not any(isinstance(m, RepConvBN) and m.fused is None for m in model.modules())
    assert torch.allclose(trained, folded, atol=1e-4, rtol=1e-4)


def test_a_reparam_model_loads_folded_at_the_plain_cost_and_unfolded_for_training(tmp_path):
    model = scrambled_batchnorms(create_model("resdropnet_xs_rep"))
    path = save_model(model, tmp_path / "rep.safetensors")
    x = torch.rand(5, 1, 48, 48)
    with torch.no_grad():
        expected = model(x)
        served = load_model(path)
        assert torch.allclose(served(x), expected, atol=1e-4, rtol=1e-4)
    plain = create_model("resdropnet_xs")
    assert count_macs(served) == count_macs(plain) < count_macs(model)
    assert [m.weight.shape for m in served.modules() if isinstance(m, nn.Conv2d)] == \
        [m.weight.shape for m in plain.modules() if isinstance(m, nn.Conv2d)]
    assert load_model(path, for_inference=False).state_dict().keys() == model.state_dict().keys()
    with pytest.raises(ValueError, match="folded for inference"):
        save_model(served, tmp_path / "folded.safetensors")


def test_a_reparam_model_exports_to_the_plain_networks_graph(tmp_path):
    import onnx

    from resdropnet.export import export_onnx

    paths = {}
    for name in ("resdropnet_xs_rep", "resdropnet_xs"):
        weights = save_model(scrambled_batchnorms(create_model(name)), tmp_path / f"{name}.safetensors")
        result = export_onnx(weights, tmp_path / f"{name}.onnx")
        assert result["max_abs_difference"] < 1e-4
        paths[name] = tmp_path / f"{name}.onnx"
    op_types = {name: [node.op_type for node in onnx.load(str(path)).graph.node] for name, path in paths.items()}
    assert op_types["resdropnet_xs_rep"] == op_types["resdropnet_xs"]


def test_resdropnet_xs_deep_is_the_swept_layout_and_costs_no_more_than_resdropnet_xs(tmp_path):
    swept = create_model("resdropnet_xs", widths=(16, 32, 80, 160), blocks=(1, 1, 2, 2))  # as its screens trained it
    path = save_model(swept, tmp_path / "swept.safetensors")
    registered = create_model("resdropnet_xs_deep")
    registered.load_state_dict(load_model(path, for_inference=False).state_dict())  # same layers, same shapes
    assert count_macs(registered) == count_macs(swept) < count_macs(create_model("resdropnet_xs"))
