"""Cost-targeted families (vision transformers, ConvNeXt, Mamba, odd-op CNNs, GNNs): sampling, building,
export, op coverage."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from archcast.frontends.onnx import load_onnx  # noqa: E402
from archcast.zoo import FAMILIES, ZooSample, export_sample, get_family  # noqa: E402
from archcast.zoo.sampling import CostTargetedFamily  # noqa: E402

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
        assert isinstance(fam, CostTargetedFamily)
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


@pytest.mark.parametrize("name", MODERN)
def test_export_at_batch_2(name):
    g = load_onnx(export_sample(ZooSample(name, 0, get_family(name).tiny_config()), batch_size=2), name=name)
    assert all(shape[0] == 2 for shape in g.inputs.values()), g.inputs


def test_widened_version_2_is_version_1_plus_redrawn_keys_within_the_caps():
    fam = get_family("swin_large")
    assert fam.versions() == ("1", "2") and fam.version == "2" and fam.widened
    v2_configs = set()
    for seed in range(40):
        v1, v2 = fam.sample(seed, "1"), fam.sample(seed)
        assert (v1.generator_version, v2.generator_version) == ("1", "2")
        keep = set(v1.config) - set(fam.widened)
        assert {k: v2.config[k] for k in keep} == {k: v1.config[k] for k in keep}
        assert all(v2.config[k] in opts for k, opts in fam.widened.items())
        assert fam.estimate_macs(v2.config) <= fam.macs_range[1]
        assert fam.estimate_params(v2.config) <= fam.max_params
        v2_configs.add(json.dumps(v2.config, sort_keys=True))
    # the re-drawn keys do vary (the space is wider, not relabelled)
    assert {fam.sample(s).config["mlp_ratio"] for s in range(40)} == {2.0, 3.0, 4.0}
    assert len(v2_configs) > len({json.dumps(fam.sample(s, "1").config, sort_keys=True) for s in range(40)})
    # a family without widened keys has one version
    assert get_family("swin").versions() == ("1",)


def test_swin_large_version_1_configs_of_the_data_sets_still_regenerate():
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "datasets"
    rows = [r for d in ("ort-cpu-1t-v2", "ort-cpu-1t-v2c") for r in csv.DictReader((root / d / "models.csv").open())
            if r["family"] == "swin_large"]
    assert len(rows) >= 60 and {r["generator_version"] for r in rows} == {"1"}
    fam = get_family("swin_large")
    for r in rows[::3]:
        assert fam.sample(int(r["seed"]), r["generator_version"]).config == json.loads(r["generator_config"])
