"""Regressions for the audit's appendix: hostile ONNX ends in one-line archcast errors, fast,
without large allocations (every case here crashed, hung or escaped as a non-archcast error)."""

from __future__ import annotations

import resource
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.errors import ArchcastError, InvalidInputError
from archcast.frontends import load_graph
from archcast.frontends.onnx import load_onnx


def _model(nodes, inits=(), x=(1, 4), opset=17, out=None) -> onnx.ModelProto:
    out = out or nodes[-1].output[0]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x))],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _one_line_error(source, match: str = "", **kw) -> str:
    t0 = time.perf_counter()
    with pytest.raises(ArchcastError, match=match) as e:
        load_graph(source, **kw)
    assert time.perf_counter() - t0 < 10
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- initializer decoding
@pytest.mark.parametrize("mutate, match", [
    (lambda t: setattr(t, "data_type", 99), "data_type 99"),
    (lambda t: setattr(t, "raw_data", b"\x01\x02\x03"), "3 bytes of raw_data"),
    (lambda t: (t.ClearField("raw_data"), t.int64_data.extend([1, 2, 3])), "cannot be decoded"),
])
def test_bad_initializer_data_is_a_clean_error(mutate, match):
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    mutate(shape)
    m = _model([helper.make_node("Reshape", ["x", "shape"], ["y"])], [shape])
    msg = _one_line_error(m.SerializeToString(), match)
    assert "'shape'" in msg


def test_non_utf8_string_tensor_is_not_decoded():
    s = TensorProto(name="s", data_type=TensorProto.STRING, dims=[1], string_data=[b"\xff\xfe"])
    m = _model([helper.make_node("Identity", ["x"], ["y"])], [s])
    g = load_onnx(m)  # an unused string initializer: nothing to decode
    assert len(g) == 1


def test_constant_value_with_bad_dims_is_a_clean_error():
    v = helper.make_tensor("v", TensorProto.INT64, [2], [1, -1])
    v.dims[:] = [5]
    m = _model([helper.make_node("Constant", [], ["shape"], value=v), helper.make_node("Reshape", ["x", "shape"], ["y"])])
    _one_line_error(m, "cannot be decoded")


# ---------------------------------------------------------------------------- onnx C++ errors
def test_op_type_that_is_not_text_is_a_clean_error_or_generic():
    m = _model([helper.make_node("Relu", ["x"], ["y"])])
    data = m.SerializeToString().replace(b"Relu", b"R\xffl\xfe")
    try:
        g = load_graph(data)
        assert g.nodes[0].op_type  # decoded with replacement characters, costed generically
    except ArchcastError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize("exc", [ValueError("vector::reserve"), IndexError("vector::_M_range_check: __n >= 3"),
                                 TypeError("get_schema(): incompatible function arguments"), RuntimeError("x")])
def test_onnx_inference_errors_are_archcast_errors(monkeypatch, exc):
    """onnx raises its C++ errors as ValueError/IndexError/TypeError: all become one line."""
    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", boom)
    msg = _one_line_error(_model([helper.make_node("Relu", ["x"], ["y"])]), "ONNX shape inference failed")
    assert str(exc).splitlines()[0][:20] in msg


# ---------------------------------------------------------------------------- memory budgets
@pytest.mark.parametrize("nodes, inits", [
    ([helper.make_node("Range", ["a", "b", "c"], ["r"]), helper.make_node("Cast", ["r"], ["y"], to=1)],
     [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in (("a", 0), ("b", 1 << 26), ("c", 1))]),
    ([helper.make_node("Expand", ["x", "s"], ["y"])], [numpy_helper.from_array(np.array([1 << 30, 4], np.int64), "s")]),
    ([helper.make_node("ConstantOfShape", ["s"], ["c"]), helper.make_node("Add", ["x", "c"], ["y"])],
     [numpy_helper.from_array(np.array([1 << 15, 1 << 15, 4], np.int64), "s")]),
])
def test_huge_constants_are_not_materialised(nodes, inits):
    before = _rss_mb()
    try:
        g = load_graph(_model(nodes, inits).SerializeToString())
        assert max(d for n in g.nodes for s in n.output_shapes for d in s) >= 1 << 15  # shapes, not data
    except ArchcastError as e:
        assert "\n" not in str(e)
    assert _rss_mb() - before < 500


def test_12k_node_chain_loads_and_tokenizes_without_a_dense_matrix(monkeypatch):
    """(The audit's 100,000-node chain runs in the fuzz harness's big_graph family.)"""
    from archcast.tokenizer import get_tokenizer

    n = 12_000
    nodes = [helper.make_node("Relu", [f"t{i}" if i else "x"], [f"t{i + 1}"]) for i in range(n)]
    before = _rss_mb()
    g = load_onnx(_model(nodes, x=(1, 2)))
    t = get_tokenizer("archcast-v1").encode(g)
    assert t.adj is None and t.edges.shape == (n - 1, 2)
    assert _rss_mb() - before < 400  # a dense 12k x 12k float32 would be 0.54 GiB
    from archcast.tokenizer import network

    monkeypatch.setattr(network, "DENSE_BUDGET_BYTES", 256 << 20)
    with pytest.raises(InvalidInputError, match="dense adjacency of 0.5 GiB"):  # refused before allocating
        t.dense_adjacency()


def test_10000_node_chain_listed_in_reverse_is_fast():
    """(The audit's 30,000-node reverse chain runs in the fuzz harness's big_graph family.)"""
    n = 10_000
    nodes = [helper.make_node("Relu", [f"t{i}" if i else "x"], [f"t{i + 1}"]) for i in range(n)][::-1]
    # CPU time, not wall time: a guard against super-linear work that a loaded machine cannot trip
    t0 = time.process_time()
    g = load_onnx(_model(nodes, out=f"t{n}"))
    assert len(g) == n and g.nodes[0].name == "Relu_0"
    assert time.process_time() - t0 < 8


# ---------------------------------------------------------------------------- time and arithmetic
@pytest.mark.parametrize("equation", ["a...b...,c->", "...,...->...", "ab->", "->", "...a", "ij,jk"])
def test_einsum_cost_never_hangs(equation):
    m = _model([helper.make_node("Einsum", ["x", "x"], ["y"], equation=equation)], x=(2, 3))
    t0 = time.perf_counter()
    try:
        g = load_graph(m)
        assert g.flops >= 0
    except ArchcastError as e:
        assert "\n" not in str(e)
    assert time.perf_counter() - t0 < 5


def test_einsum_rotary_gru_graph_is_fast():
    nodes = [helper.make_node("Einsum", ["x", "x"], ["e"], equation="bi,bi->bi"),
             helper.make_node("Unsqueeze", ["e", "ax"], ["e3"]),
             helper.make_node("GRU", ["e3", "W", "R"], ["y"], hidden_size=4)]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "ax"),
             numpy_helper.from_array(np.ones((1, 12, 4), np.float32), "W"),
             numpy_helper.from_array(np.ones((1, 12, 4), np.float32), "R")]
    t0 = time.perf_counter()
    g = load_graph(_model(nodes, inits))
    assert time.perf_counter() - t0 < 5
    gru = next(n for n in g.nodes if n.op_type == "GRU")
    # 1 step, batch 1, hidden 4, input 4: 2*1*3*4*(4+4) GEMMs + 12*4 cell work
    assert gru.flops == 2 * 3 * 4 * 8 + 12 * 4


@pytest.mark.parametrize("op", ["Conv", "ConvTranspose"])
@pytest.mark.parametrize("group", [float("inf"), 0, -1])
def test_bad_group_is_a_clean_error(op, group):
    w = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
    node = helper.make_node(op, ["x", "w"], ["y"], kernel_shape=[1, 1])
    node.attribute.append(helper.make_attribute("group", group))
    _one_line_error(_model([node], [w], x=(1, 2, 4, 4)))


def test_kernel_of_2_to_the_62_is_a_clean_error():
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1 << 62, 1 << 62])
    _one_line_error(_model([node], x=(1, 1, 4, 4)))


def test_tokenizer_never_overflows_on_huge_attributes():
    from archcast.graph import NetGraph, Node
    from archcast.tokenizer import get_tokenizer

    g = NetGraph([Node("p", "MaxPool", {"kernel_shape": (1 << 62,) * 20, "group": 10 ** 400},
                       input_shapes=[(1, 1, 4, 4)], output_shapes=[(1, 1, 1, 1)])], [])
    for name in ("archcast-v1", "narformer-v2"):
        try:
            t = get_tokenizer(name).encode(g)
            assert np.isfinite(t.tokens).all()
        except InvalidInputError as e:
            assert "non-finite" in str(e)


def test_names_that_are_not_utf8_are_a_clean_error():
    """Regression (fuzz, bit flips): protobuf hands invalid UTF-8 names back as bytes or raises."""
    m = _model([helper.make_node("Relu", ["x"], ["r"], name="abc"), helper.make_node("Relu", ["r"], ["y"])])
    data = m.SerializeToString().replace(b"abc", b"\xe3\x28\xa1")
    _one_line_error(data, "not UTF-8 text")


def test_shape_attributes_of_the_wrong_type_do_not_break_folding():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"])]
    nodes[0].attribute.append(helper.make_attribute("start", [1, 2]))
    try:
        load_graph(_model(nodes, x=(2, 3)))
    except ArchcastError as e:
        assert "\n" not in str(e)
