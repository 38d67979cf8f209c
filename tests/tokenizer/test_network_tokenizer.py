"""Network tokenizers on hand-built NetGraphs: shapes, order, adjacency, vocabulary, golden numbers."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from archcast.errors import InvalidInputError, UnknownNameError
from archcast.graph import NetGraph, Node
from archcast.tokenizer import (
    TOKENIZERS,
    ArchcastV1Tokenizer,
    NarFormerV2Tokenizer,
    TokenizedGraph,
    collate,
    get_tokenizer,
)
from archcast.tokenizer.network import has_bias

NAMES = ["narformer-v2", "archcast-v1"]
CONV = dict(kernel_shape=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1), dilations=(1, 1), group=1)


def resnet_block(scramble: bool = False, extra: Node | None = None) -> NetGraph:
    """Conv -> BN -> Relu -> Conv(bias) -> Add(residual from Relu) -> GAP -> Flatten -> Gemm."""
    x, y = (1, 3, 32, 32), (1, 16, 32, 32)
    nodes = [
        Node("conv1", "Conv", CONV, [x], [y], flops=884736, params=432, memory_bytes=4 * (16 * 32 * 32 + 432)),
        Node("bn", "BatchNormalization", {"epsilon": 1e-5}, [y], [y], flops=2 * 16384, params=64, memory_bytes=65792),
        Node("relu", "Relu", {}, [y], [y], flops=16384, memory_bytes=65536),
        Node("conv2", "Conv", CONV, [y], [y], flops=4718592, params=2320, memory_bytes=74816),
        Node("add", "Add", {}, [y, y], [y], flops=16384, memory_bytes=65536),
        Node("gap", "GlobalAveragePool", {}, [y], [(1, 16, 1, 1)], flops=16384, memory_bytes=64),
        Node("flatten", "Flatten", {"axis": 1}, [(1, 16, 1, 1)], [(1, 16)], memory_bytes=64),
        Node("fc", "Gemm", {"transB": 1, "alpha": 1.0}, [(1, 16)], [(1, 10)], flops=340, params=170, memory_bytes=720),
    ]
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (2, 4), (4, 5), (5, 6), (6, 7)]
    if extra is not None:
        nodes.append(extra)
        edges.append((7, 8))
    if scramble:  # list nodes in a non-topological order; tokens must still come out sorted
        perm = [5, 2, 7, 0, 4, 1, 6, 3] + ([8] if extra is not None else [])
        new = {old: i for i, old in enumerate(perm)}
        nodes = [nodes[i] for i in perm]
        edges = [(new[a], new[b]) for a, b in edges]
    return NetGraph(nodes, edges, name="resnet_block", inputs={"x": x}).validate()


def chain(n: int) -> NetGraph:
    """``n`` operators alternating Conv / Relu, a single path."""
    s = (1, 64, 56, 56)
    nodes = [
        Node(f"n{i}", "Conv", CONV, [s], [s], flops=231211008, params=36864, memory_bytes=950272)
        if i % 2 == 0
        else Node(f"n{i}", "Relu", {}, [s], [s], flops=200704, memory_bytes=802816)
        for i in range(n)
    ]
    return NetGraph(nodes, [(i, i + 1) for i in range(n - 1)], name=f"chain{n}")


@pytest.fixture(params=NAMES)
def tok(request):
    return get_tokenizer(request.param)


def test_registry_and_dims():
    assert TOKENIZERS.names() == ["archcast-v1", "narformer-v2"]
    nf, v1 = get_tokenizer("narformer-v2"), get_tokenizer("archcast-v1")
    assert nf.token_dim == 28 + 1 + 80 + 40 == 149 and nf.graph_dim == 40
    assert v1.token_dim == len(v1.vocabulary) + 1 + 23 + 17 * 6 == 223 and v1.graph_dim == 35
    with pytest.raises(UnknownNameError, match="archcast-v1, narformer-v2"):
        get_tokenizer("narformer")


def test_encode_shapes_and_finite(tok):
    t = tok.encode(resnet_block())
    assert isinstance(t, TokenizedGraph)
    assert t.tokens.shape == (8, tok.token_dim) and t.tokens.dtype == np.float32
    assert t.adj.shape == (8, 8) and t.adj.dtype == np.float32
    assert t.graph_features.shape == (tok.graph_dim,) and t.graph_features.dtype == np.float32
    assert np.isfinite(t.tokens).all() and np.isfinite(t.graph_features).all()
    assert t.unknown_ops == {} and t.fingerprint == tok.fingerprint()
    # every token has exactly one op slot set
    np.testing.assert_array_equal(t.tokens[:, : len(tok.vocabulary) + 1].sum(1), 1.0)


def test_token_order_is_topological_and_independent_of_listing(tok):
    g, gs = resnet_block(), resnet_block(scramble=True)
    a, b = tok.encode(g), tok.encode(gs)
    pos = {name: i for i, name in enumerate(gs.nodes[i].name for i in gs.topological_order())}
    assert all(pos[gs.nodes[s].name] < pos[gs.nodes[d].name] for s, d in gs.edges)
    assert a.op_types == b.op_types == [
        "Conv", "BatchNormalization", "Relu", "Conv", "Add", "GlobalAveragePool", "Flatten", "Gemm"
    ]  # fmt: skip
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.adj, b.adj)


def test_adjacency_undirected_no_self_loops(tok):
    t = tok.encode(resnet_block(scramble=True))
    np.testing.assert_array_equal(t.adj, t.adj.T)
    assert np.all(np.diag(t.adj) == 0) and set(np.unique(t.adj)) <= {0.0, 1.0}
    assert t.adj.sum() == 2 * 8  # 8 directed edges, each stored both ways
    assert t.adj[2, 4] == t.adj[4, 2] == 1  # residual Relu -> Add
    assert t.adj[0, 2] == 0


def test_unknown_op_goes_to_unknown_slot(tok):
    extra = Node("mystery", "MyCustomOp", {"alpha": 0.5}, [(1, 10)], [(1, 10)], memory_bytes=40)
    g = resnet_block(extra=extra)
    t = tok.encode(g)
    v = len(tok.vocabulary)
    i = t.op_types.index("MyCustomOp")
    assert t.tokens[i, :v].sum() == 0 and t.tokens[i, v] == 1.0  # not an all-zero code
    assert t.tokens[:, v].sum() == 1.0
    assert t.unknown_ops == {"MyCustomOp": 1}
    text = tok.explain(g)
    assert "UNKNOWN: 'MyCustomOp'" in text and "unknown ops: {'MyCustomOp': 1}" in text


def test_fingerprint_stable_and_sensitive():
    nf = NarFormerV2Tokenizer()
    assert nf.fingerprint() == NarFormerV2Tokenizer().fingerprint() == get_tokenizer("narformer-v2").fingerprint()
    assert len(nf.fingerprint()) == 16 and int(nf.fingerprint(), 16) >= 0
    others = {
        NarFormerV2Tokenizer(vocabulary=nf.vocabulary[:-1]).fingerprint(),
        NarFormerV2Tokenizer(vocabulary=nf.vocabulary[::-1]).fingerprint(),
        NarFormerV2Tokenizer(sin_dim=8).fingerprint(),
        NarFormerV2Tokenizer(graph_scale=1e6).fingerprint(),
        ArchcastV1Tokenizer().fingerprint(),
        ArchcastV1Tokenizer(sin_dim=4).fingerprint(),
    }
    assert nf.fingerprint() not in others and len(others) == 6
    for cls in (NarFormerV2Tokenizer, ArchcastV1Tokenizer):
        t = cls(vocabulary=["Conv", "Relu"])
        assert cls.from_config(t.config()).fingerprint() == t.fingerprint()
    with pytest.raises(InvalidInputError, match="version"):
        ArchcastV1Tokenizer.from_config({**ArchcastV1Tokenizer().config(), "version": "0"})
    with pytest.raises(InvalidInputError, match="duplicates"):
        NarFormerV2Tokenizer(vocabulary=["Conv", "Conv"])


def test_narformer_sinusoid_golden_numbers():
    """conv1's kernel (3) in the first attribute slot, by hand: sin/cos(3 * 10000^(-k/5))."""
    t = NarFormerV2Tokenizer().encode(resnet_block())
    want = [0.14112, -0.989992, 0.457755, 0.889079, 0.075285, 0.997162, 0.011943, 0.999929, 0.001893, 0.999998]
    np.testing.assert_allclose(t.tokens[0, 29:39], want, atol=1e-5)
    # group slot (5th) = 1 -> sin(1), cos(1) first; output shape C=16 (10th column) -> sin(16)
    np.testing.assert_allclose(t.tokens[0, 29 + 40 : 29 + 42], [0.841471, 0.540302], atol=1e-5)
    np.testing.assert_allclose(t.tokens[0, 29 + 90], -0.287903, atol=1e-5)
    # graph features: batch 1 as is, FLOPs / 1e9
    flops = sum(n.flops for n in resnet_block().nodes) / 1e9
    np.testing.assert_allclose(t.graph_features[:2], [0.841471, 0.540302], atol=1e-5)
    np.testing.assert_allclose(t.graph_features[10:12], [np.sin(flops), np.cos(flops)], atol=1e-6)


def test_archcast_v1_log_columns():
    tk = ArchcastV1Tokenizer()
    t = tk.encode(resnet_block())
    o = len(tk.vocabulary) + 1
    col = {c: o + i for i, c in enumerate(tk.node_columns)}
    conv1 = t.tokens[0]
    assert conv1[col["kernel_h"]] == pytest.approx(0.5)  # log2(1 + 3) / 4
    assert conv1[col["c_in"]] == pytest.approx(2.0 / 12)  # log2(1 + 3) / 12
    assert conv1[col["c_out"]] == pytest.approx(np.log2(17) / 12)
    assert conv1[col["flops"]] == pytest.approx(np.log10(1 + 884736) / 10, rel=1e-6)
    assert conv1[col["has_bias"]] == 0 and t.tokens[3, col["has_bias"]] == 1  # conv2 has a bias
    fc = t.tokens[7]
    assert fc[col["c_in"]] == pytest.approx(np.log2(17) / 12)  # rank 2: channels = last dim
    assert fc[col["d2"]] == pytest.approx(1 / 12) and fc[col["d3"]] == pytest.approx(np.log2(11) / 12)
    assert t.tokens[4, col["in_degree"]] == pytest.approx(np.log2(3) / 4)  # Add has 2 inputs
    assert np.abs(t.tokens).max() <= 1.5  # roughly unit scale
    np.testing.assert_allclose(t.graph_features[4], np.log10(9) / 4, rtol=1e-6)  # 8 nodes


def test_has_bias_inference():
    g = resnet_block()
    assert [has_bias(n) for n in g.nodes] == [0, 0, 0, 1, 0, 0, 0, 1]
    assert has_bias(Node("c", "Conv", {"has_bias": 1}, [], [(1, 1)])) == 1.0


def test_odd_nodes_stay_finite(tok):
    """Scalars, rank-5 outputs, negative axes, string attributes, nested tuples, huge costs."""
    nodes = [
        Node("a", "Conv", {"kernel_shape": (3, 3, 3), "auto_pad": "SAME_UPPER", "group": 4}, [(2, 8, 4, 16, 16)],
             [(2, 8, 4, 16, 16)], flops=10**15, params=10**10, memory_bytes=10**14),
        Node("b", "Softmax", {"axis": -1}, [(2, 8, 4, 16, 16)], [(2, 8, 4, 16, 16)]),
        Node("c", "ReduceMean", {"axes": ((1, 2),), "keepdims": 0}, [(2, 8, 4, 16, 16)], [()]),
        Node("d", "Einsum", {"equation": "ij->ji"}, [()], [(0,)]),
    ]  # fmt: skip
    t = tok.encode(NetGraph(nodes, [(0, 1), (1, 2), (2, 3)], name="odd"))
    assert np.isfinite(t.tokens).all() and np.isfinite(t.graph_features).all()


def test_collate_pads_and_matches_single_graphs(tok):
    items = tok.encode_many([resnet_block(), chain(3)], progress=False)
    batch = collate(items)
    d, g = tok.token_dim, tok.graph_dim
    assert batch["tokens"].shape == (2, 8, d) and batch["adj"].shape == (2, 8, 8)
    assert batch["mask"].dtype == bool and batch["mask"].sum(1).tolist() == [8, 3]
    assert batch["graph_features"].shape == (2, g) and batch["n_nodes"].tolist() == [8, 3]
    np.testing.assert_array_equal(batch["tokens"][1, :3], items[1].tokens)
    np.testing.assert_array_equal(batch["adj"][1, :3, :3], items[1].adj)
    assert not batch["tokens"][1, 3:].any() and not batch["adj"][1, 3:].any() and not batch["adj"][1, :, 3:].any()
    other = next(get_tokenizer(n) for n in NAMES if n != tok.name)
    with pytest.raises(InvalidInputError, match="different widths"):
        collate([items[0], other.encode(chain(2))])
    with pytest.raises(InvalidInputError):
        collate([])


def test_refuses_cells_and_cycles(tok):
    cell = NetGraph([Node("in", "input"), Node("out", "output")], [(0, 1)], kind="cell", meta={"space": "nb201"})
    with pytest.raises(InvalidInputError, match="kind 'network'"):
        tok.encode(cell)
    s = (1, 4)
    loop = NetGraph([Node("a", "Relu", {}, [s], [s]), Node("b", "Relu", {}, [s], [s])], [(0, 1), (1, 0)])
    with pytest.raises(InvalidInputError, match="cycle"):
        tok.encode(loop)


def test_explain_shows_raw_values(tok):
    text = tok.explain(resnet_block())
    assert "[0] conv1 Conv -> slot 0" in text and "kernel_shape=(3, 3)" in text
    assert "out [(1, 16, 32, 32)]" in text and "flops=884736" in text and "unknown ops: none" in text
    assert f"tokens [8, {tok.token_dim}]" in text


def test_5000_node_graph_is_fast(tok):
    g = chain(5000)
    # CPU time, not wall time: a guard against super-linear work that a loaded machine cannot trip
    t0 = time.process_time()
    t = tok.encode(g)
    dt = time.process_time() - t0
    print(f"{tok.name}: 5,000-node chain tokenized in {dt:.3f} s")
    assert t.tokens.shape == (5000, tok.token_dim) and t.adj is None  # over DENSE_MAX_NODES: edges only
    assert t.edges.shape == (4999, 2) and (t.edges[:, 0] < t.edges[:, 1]).all()
    assert t.dense_adjacency().sum() == 2 * 4999
    assert np.isfinite(t.tokens).all()
    assert dt < 10.0


def test_vocabulary_names_are_onnx_ops():
    defs = pytest.importorskip("onnx.defs")
    for name in NAMES:
        missing = [op for op in get_tokenizer(name).vocabulary if not defs.has(op)]
        assert missing == [], f"{name}: not ONNX ops: {missing}"


def test_import_does_not_pull_torch_or_onnx():
    code = "import sys, archcast.tokenizer; print('torch' in sys.modules, 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_collate_refuses_batches_over_the_dense_budget(monkeypatch):
    from archcast.tokenizer import network

    tok = network.get_tokenizer("archcast-v1")
    items = [tok.encode(chain(50)), tok.encode(chain(20))]
    batch = network.collate(items)
    np.testing.assert_array_equal(batch["adj"][0, :50, :50], items[0].dense_adjacency())
    monkeypatch.setattr(network, "DENSE_BUDGET_BYTES", 4 * 2 * 50 * 50 - 1)
    with pytest.raises(InvalidInputError, match="dense adjacency"):
        network.collate(items)


def test_edges_match_the_dense_adjacency():
    from archcast.tokenizer import get_tokenizer

    t = get_tokenizer("narformer-v2").encode(chain(30))
    dense = np.zeros((30, 30), np.float32)
    dense[t.edges[:, 0], t.edges[:, 1]] = dense[t.edges[:, 1], t.edges[:, 0]] = 1
    np.testing.assert_array_equal(dense, t.adj)


def test_bad_batch_size_meta_is_a_clean_error():
    from archcast.tokenizer import get_tokenizer

    g = chain(3)
    g.meta["batch_size"] = "x"
    with pytest.raises(InvalidInputError, match="batch_size must be a positive integer"):
        get_tokenizer("archcast-v1").encode(g)


def test_batching_dense_adjacency_checks_the_budget_first(monkeypatch):
    from archcast.tokenizer import batching, network

    g = chain(40)
    assert batching.dense_adjacency(g).sum() == 2 * 39
    monkeypatch.setattr(network, "DENSE_BUDGET_BYTES", 1000)
    with pytest.raises(InvalidInputError, match="dense adjacency"):
        batching.dense_adjacency(chain(41))
