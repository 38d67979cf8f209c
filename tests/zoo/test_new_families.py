"""The families added for a zoo as varied as real networks (issue 10): registration, determinism per
seed, cost span, the analytic cost against the frontend's count, op coverage, batch > 1, and
onnxruntime running a tiny sample of each."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from archcast.frontends.onnx import load_onnx  # noqa: E402
from archcast.zoo import FAMILIES, ZooSample, export_sample, get_family, load_builtin_families  # noqa: E402
from archcast.zoo.grouped_cnn import channel_shuffle, regnet_widths  # noqa: E402
from archcast.zoo.sampling import CostTargetedFamily  # noqa: E402

# family -> op types its tiny sample must contain (what makes the family different)
EXPECTED_OPS = {
    "resnext": {"Conv", "Sigmoid", "Mul"},  # grouped 3x3 + SE gate
    "regnet": {"Conv", "Reshape", "Sigmoid"},  # ECA gate: Conv1d over channels
    "shufflenet": {"Slice", "Transpose", "Concat", "Reshape"},  # split + shuffle
    "densenet": {"Concat", "BatchNormalization", "AveragePool"},
    "ghostnet": {"Concat", "Slice", "HardSigmoid"},
    "repvgg": {"Add", "BatchNormalization"},  # summed branches, identity BN
    "convmixer": {"Conv", "Erf", "BatchNormalization"},
    "coatnet": {"MatMul", "Softmax", "Gather", "Sigmoid"},  # attention with gathered bias, SE
    "efficientformer": {"AveragePool", "Sub", "MatMul", "Softmax"},
    "unet": {"ConvTranspose", "Concat"},
    "fpn_detector": {"Resize", "Concat", "Sigmoid"},
    "rnn": {"LSTM"},
    "sequencer": {"LSTM", "LayerNormalization"},
    "bert": {"Gather", "Softmax", "Tanh", "LayerNormalization"},
    "gpt": {"Gather", "Softmax", "MatMul"},
    "moe_gpt": {"TopK", "ScatterElements", "ReduceSum"},
    "nfnet": {"Conv", "Mul", "Sigmoid"},
    "vit_large": {"MatMul", "Softmax"},
    "swin_large": {"MatMul", "Softmax"},
    "convnext_large": {"Conv", "LayerNormalization"},
}
NEW = sorted(EXPECTED_OPS)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registered_and_the_zoo_has_32_families():
    load_builtin_families()
    assert set(NEW) <= set(FAMILIES.names())
    assert len(FAMILIES) >= 32
    for name in NEW:
        fam = get_family(name)
        assert isinstance(fam, CostTargetedFamily) and type(fam).__module__.startswith("archcast.zoo.")
        assert fam.name == name and fam.version == fam.versions()[-1] and fam.description and "\n" not in fam.description


@pytest.mark.parametrize("name", NEW)
def test_sampling_is_deterministic_and_spans_two_orders_of_magnitude(name):
    fam = get_family(name)
    assert fam.sample(11).config_json() == fam.sample(11).config_json()
    configs = [fam.sample(s).config for s in range(60)]
    assert len({ZooSample(name, 0, c).config_json() for c in configs}) > 50
    macs = np.array([fam.estimate_macs(c) for c in configs])
    assert macs.max() <= fam.macs_range[1]
    assert macs.max() / macs.min() >= 100, (macs.min(), macs.max())
    if fam.max_params:
        assert max(fam.estimate_params(c) for c in configs) <= fam.max_params


@pytest.fixture(scope="module")
def tiny_graphs():
    return {name: load_onnx(export_sample(ZooSample(name, 0, get_family(name).tiny_config())), name=name)
            for name in NEW}


@pytest.mark.parametrize("name", NEW)
def test_tiny_sample_ops_and_analytic_cost(name, tiny_graphs):
    g = tiny_graphs[name]
    ops = set(g.op_counts())
    assert EXPECTED_OPS[name] <= ops, sorted(ops)
    # the sampler's analytic MACs track the frontend's FLOPs (2 per multiply-add, plus element-wise work)
    ratio = 2 * get_family(name).estimate_macs(get_family(name).tiny_config()) / g.flops
    assert 0.6 < ratio < 1.15, ratio


@pytest.mark.parametrize("name", NEW)
def test_onnxruntime_runs_tiny_sample_at_batch_2(name):
    fam = get_family(name)
    config = fam.tiny_config()
    data = export_sample(ZooSample(name, 0, config), batch_size=2, weight_free=False)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    torch.manual_seed(0)
    model, inputs = fam.build(config, batch_size=2)
    outs = sess.run(None, {i.name: x.numpy() for i, x in zip(sess.get_inputs(), inputs)})
    with torch.no_grad():
        ref = model.eval()(*inputs)
    ref = ref if isinstance(ref, tuple) else (ref,)
    assert len(outs) == len(ref)
    for out, r in zip(outs, ref):
        assert out.shape[0] == 2 and np.isfinite(out).all()
        assert out.shape == tuple(r.shape)
    # weights come from torch.manual_seed(0) in export_sample too, so the runtime matches torch
    np.testing.assert_allclose(outs[0], ref[0].numpy(), rtol=1e-3, atol=1e-4)


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_regnet_widths_are_quantised_and_group_divisible():
    widths, depths = regnet_widths(w0=24, wa=36.0, wm=2.5, depth=13, group_width=8)
    assert sum(depths) == 13 and widths == sorted(widths) and len(set(widths)) == len(widths)
    assert all(w % 8 == 0 for w in widths)


def test_moe_gates_keep_top_k_experts_only():
    from archcast.zoo.text_transformer import MoEFeedForward

    moe = MoEFeedForward(dim=8, hidden=16, experts=4, k=1)
    x = torch.randn(1, 5, 8)
    with torch.no_grad():
        probs = moe.router(x).softmax(-1)
        chosen = probs.argmax(-1)[0]  # top-1 routing: each token uses exactly one expert
        expected = torch.stack([moe.act(x[0, t] @ moe.w1[e]) @ moe.w2[e] for t, e in enumerate(chosen.tolist())])
        torch.testing.assert_close(moe(x)[0], expected)


def test_gpt_is_causal():
    fam = get_family("gpt")
    config = fam.tiny_config()
    torch.manual_seed(0)
    model, (ids,) = fam.build(config)
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % config["vocab_size"]
    with torch.no_grad():
        a, b = model.eval()(ids), model(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


@pytest.mark.parametrize(("gate", "ops"), [("none", set()), ("se", {"Sigmoid", "GlobalAveragePool"}),
                                           ("eca", {"Sigmoid", "Reshape"}), ("cbam", {"ReduceMax", "Concat"})])
def test_gate_variants_show_their_ops(gate, ops):
    from archcast.frontends.torch import load_torch

    config = {**get_family("resnext").tiny_config(), "gate": gate}
    g = load_torch(*get_family("resnext").build(config))
    found = set(g.op_counts())
    assert ops <= found, sorted(found)
    if gate == "none":
        assert "Sigmoid" not in found
