"""Modern model families (archcast.zoo.modern): sampling, building, export, op coverage."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from archcast.frontends.onnx import load_onnx  # noqa: E402
from archcast.zoo import FAMILIES, ZooSample, export_sample, get_family  # noqa: E402
from archcast.zoo import modern  # noqa: E402

MODERN = ["vit", "convnext", "swin", "mlpmixer", "mamba", "bcn_cnn", "linosc_cnn", "gcn", "graphsage"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Tracing/export is several times slower with 2 threads on small CI machines.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_graphs():
    """Each family's tiny config exported weight-free and read back (computed once)."""
    out = {}
    for name in MODERN:
        sample = ZooSample(name, 0, get_family(name).tiny_config())
        out[name] = load_onnx(export_sample(sample), name=name)
    return out


def test_all_registered_with_contract_fields():
    get_family("vit")  # loads the built-in modules
    for name in MODERN:
        assert name in FAMILIES
        fam = get_family(name)
        assert isinstance(fam, modern.ModernFamily)
        assert fam.name == name and fam.version == "1"
        assert fam.description and "\n" not in fam.description
    assert get_family("mamba").input_kind == "tokens"
    assert get_family("gcn").input_kind == "graph" and get_family("graphsage").input_kind == "graph"
    assert get_family("vit").input_kind == "image"


@pytest.mark.parametrize("name", MODERN)
def test_sample_is_deterministic_json_and_within_budget(name):
    fam = get_family(name)
    a, b = fam.sample(7), fam.sample(7)
    assert a == b and a.config_json() == b.config_json()
    assert json.loads(a.config_json()) == a.config  # plain JSON values only
    configs = [fam.sample(s).config for s in range(40)]
    assert len({json.dumps(c, sort_keys=True) for c in configs}) > 30  # seeds give different variants
    macs = np.array([fam.estimate_macs(c) for c in configs])
    lo, hi = fam.macs_range
    assert macs.max() <= hi
    assert macs.max() / macs.min() > 20  # the cost spread that makes the family useful for latency data
    assert macs.min() < 3 * lo


@pytest.mark.parametrize("name", MODERN)
def test_build_forward_finite(name):
    fam = get_family(name)
    for config in (fam.tiny_config(), fam.sample(0).config):
        torch.manual_seed(0)
        model, inputs = fam.build(config)
        with torch.no_grad():
            out = model.eval()(*inputs)
        assert torch.isfinite(out).all()
        if name == "mamba":
            assert inputs[0].dtype == torch.int64 and inputs[0].shape == (1, config["seq_len"])
            assert out.shape == (1, config["seq_len"], config["vocab_size"])
        elif name in ("gcn", "graphsage"):
            n = config["num_nodes"]
            assert [tuple(x.shape) for x in inputs] == [(n, config["in_features"]), (n, n)]
            assert out.shape == (n, config["num_classes"])
        else:
            assert out.shape == (1, config["num_classes"])


@pytest.mark.parametrize("name", ["vit", "mamba", "gcn"])
def test_batch_size_adds_leading_dim(name):
    fam = get_family(name)
    _, inputs = fam.build(fam.tiny_config(), batch_size=3)
    assert all(x.shape[0] == 3 for x in inputs)


@pytest.mark.parametrize("name", MODERN)
def test_tiny_export_loads_and_fingerprint_is_stable(name, tiny_graphs):
    g = tiny_graphs[name]
    assert len(g.nodes) > 3 and g.flops > 0 and g.params > 0
    again = load_onnx(export_sample(ZooSample(name, 0, get_family(name).tiny_config())), name=name)
    assert again.fingerprint() == g.fingerprint()


def test_sampled_export_fingerprint_is_stable_per_seed():
    # one real (non-tiny) sample, the cheapest family to export
    a = load_onnx(export_sample(get_family("gcn").sample(3)))
    b = load_onnx(export_sample(get_family("gcn").sample(3)))
    assert a.fingerprint() == b.fingerprint()


def test_op_coverage(tiny_graphs):
    ops = {name: set(g.op_counts()) for name, g in tiny_graphs.items()}
    union = set().union(*ops.values())
    assert {"MatMul", "Softmax", "LayerNormalization", "Sin"} <= union
    assert union & {"Erf", "Gelu"}
    assert "Sin" in ops["linosc_cnn"]
    assert "Gather" in ops["mamba"]  # the token embedding
    assert {"CumSum", "Exp", "Where", "Softplus", "Conv"} <= ops["mamba"]  # the scan and the causal conv
    assert "Softmax" in ops["vit"] and "Softmax" in ops["swin"]
    assert {"ReduceMean", "Sqrt", "Div"} <= ops["bcn_cnn"]  # BCN in plain ops
    assert "BatchNormalization" not in ops["linosc_cnn"]  # folded into the convs at export
    assert "MatMul" in ops["gcn"] and "Concat" in ops["graphsage"]


def test_swin_shifted_block_uses_roll_and_mask(tiny_graphs):
    # the tiny config has 2 windows a side in stage 1, so its second block is shifted: roll = Slice+Concat
    g = tiny_graphs["swin"]
    assert g.op_counts().get("Slice", 0) >= 4 and g.op_counts().get("Concat", 0) >= 2


def test_graph_inputs_are_normalised():
    gcn, sage = get_family("gcn"), get_family("graphsage")
    _, (x, adj) = gcn.build(gcn.tiny_config())
    assert torch.allclose(adj, adj.T) and (adj.diagonal() > 0).all()  # symmetric, self loops
    _, (x, adj) = sage.build(sage.tiny_config())
    rows = adj.sum(1)
    assert torch.allclose(rows[rows > 0], torch.ones_like(rows[rows > 0]))  # mean over neighbours
    assert (adj.diagonal() == 0).all()


def _sequential_scan(x, log_a, b_in, c_out):
    """Reference: h_t = exp(log_a_t)·h_{t−1} + B_t ⊗ x_t, y_t = C_tᵀ h_t, one step at a time."""
    bsz, seq, heads, p = x.shape
    h = torch.zeros(bsz, heads, b_in.shape[-1], p, dtype=x.dtype)
    ys = []
    for t in range(seq):
        h = torch.exp(log_a[:, t])[..., None, None] * h + b_in[:, t, None, :, None] * x[:, t, :, None, :]
        ys.append((c_out[:, t, None, :, None] * h).sum(-2))
    return torch.stack(ys, 1)


@pytest.mark.parametrize("chunk", [1, 4, 6, 24])
def test_chunked_scan_matches_sequential(chunk):
    layers = modern._layers()
    g = torch.Generator().manual_seed(chunk)
    bsz, seq, heads, p, n = 2, 24, 3, 4, 5
    x = torch.randn(bsz, seq, heads, p, generator=g, dtype=torch.float64)
    log_a = -torch.rand(bsz, seq, heads, generator=g, dtype=torch.float64)
    b_in = torch.randn(bsz, seq, n, generator=g, dtype=torch.float64)
    c_out = torch.randn(bsz, seq, n, generator=g, dtype=torch.float64)
    masks = [torch.ones(t, t, dtype=torch.bool).triu(1) for t in (chunk, seq // chunk + 1)]
    y = layers.chunked_scan(x, log_a, b_in, c_out, *masks)
    torch.testing.assert_close(y, _sequential_scan(x, log_a, b_in, c_out))


def test_mamba_is_causal():
    fam = get_family("mamba")
    torch.manual_seed(0)
    model, (ids,) = fam.build(fam.tiny_config())
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % fam.tiny_config()["vocab_size"]
    with torch.no_grad():
        a, b = model.eval()(ids), model(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_bcn_mixes_batch_and_channel_statistics():
    bcn = modern._layers().BatchChannelNorm2d(4)
    x = torch.randn(2, 4, 5, 5) * 3 + 1
    with torch.no_grad():
        bcn.alpha.fill_(1.0)
        per_channel = bcn(x)  # pure batch norm: zero mean over (N, H, W)
        bcn.alpha.fill_(0.0)
        per_sample = bcn(x)  # pure channel norm: zero mean over (C, H, W)
    torch.testing.assert_close(per_channel.mean((0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_sample.mean((1, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="stats"):
        modern._layers().BatchChannelNorm2d(4, stats="nope")


def test_linosc_formula():
    act = modern._layers().LinOsc(3)
    with torch.no_grad():
        act.alpha.fill_(2.0)
        act.beta.fill_(0.5)
    x = torch.randn(1, 3, 2, 2)
    torch.testing.assert_close(act(x), x * torch.sin(2.0 * x + 0.5))
