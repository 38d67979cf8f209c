"""Shape recovery: the three paths, their budgets, and a crashing/hanging/bloating runtime child."""

from __future__ import annotations

import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.errors import InvalidInputError
from archcast.frontends import shapes as S
from archcast.frontends.folding import FOLD_BUDGET, fold_node
from archcast.frontends.onnx import load_onnx, strip_weights


def _model(nodes, inits=(), x=(1, 64), opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x))],
                          [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _data_dependent(n: int):
    """``n`` nodes after a NonZero whose length only a run can tell: the onnxruntime path."""
    inits = [numpy_helper.from_array(np.ones(64, np.float32), "ones"),
             numpy_helper.from_array(np.array([0], np.int64), "ax0")]
    nodes = [helper.make_node("NonZero", ["ones"], ["nz"]), helper.make_node("Squeeze", ["nz", "ax0"], ["idx"]),
             helper.make_node("Gather", ["x", "idx"], ["h0"], axis=1)]
    for i in range(n - 1):
        nodes.append(helper.make_node("Relu" if i % 2 else "Sigmoid", [f"h{i}"], [f"h{i + 1}"]))
    return _model(nodes, inits)


def test_shape_of_activation_is_folded():
    # Shape(x) -> Gather(1) -> Unsqueeze -> Concat([-1]) -> Reshape: needs the value of Shape(x)
    inits = [numpy_helper.from_array(np.array(1, np.int64), "one"), numpy_helper.from_array(np.array([0], np.int64), "ax"),
             numpy_helper.from_array(np.array([-1], np.int64), "m1")]
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["c"]), helper.make_node("Unsqueeze", ["c", "ax"], ["cu"]),
             helper.make_node("Concat", ["m1", "cu"], ["shape"], axis=0), helper.make_node("Reshape", ["r", "shape"], ["y"])]
    g = load_onnx(_model(nodes, inits, x=(2, 3, 4)))
    assert g.meta["shape_path"] == "folded"
    assert g.nodes[-1].output_shapes == [(8, 3)] and g.nodes[-1].op_type == "Reshape"  # [-1, dim 1]
    assert [n.op_type for n in g.nodes] == ["Relu", "Shape", "Gather", "Unsqueeze", "Concat", "Reshape"]


def test_2000_node_graph_through_the_runtime_fallback_under_3_s():
    m = _data_dependent(2000)
    # CPU time, not wall time: a guard against super-linear work that a loaded machine cannot trip
    t0 = time.process_time()
    g = load_onnx(m)
    dt = time.process_time() - t0
    print(f"2,000-node graph through the onnxruntime fallback: {dt:.2f} s")
    assert g.meta["shape_path"] == "onnxruntime" and len(g) == 2000
    assert g.nodes[-1].output_shapes == [(1, 64)]
    assert dt < 3.0, f"fallback took {dt:.2f} s"


def test_runtime_keeps_shape_setting_initializers_and_refuses_them_weight_free():
    # Resize's scales are float: a random value would give a random shape
    inits = [numpy_helper.from_array(np.ones(64, np.float32), "ones"), numpy_helper.from_array(np.array([0], np.int64), "ax0"),
             numpy_helper.from_array(np.array([1, 1, 2, 3], np.float32), "scales")]
    nodes = [helper.make_node("NonZero", ["ones"], ["nz"]), helper.make_node("Squeeze", ["nz", "ax0"], ["idx"]),
             helper.make_node("Gather", ["x", "idx"], ["h"], axis=3),
             helper.make_node("Resize", ["h", "", "scales"], ["y"], mode="nearest")]
    m = _model(nodes, inits, x=(1, 2, 4, 64))
    g = load_onnx(m)
    assert g.meta["shape_path"] == "onnxruntime" and g.nodes[-1].output_shapes == [(1, 2, 8, 192)]
    m.graph.initializer[2].ClearField("raw_data")  # weight-free scales: cannot be guessed
    with pytest.raises(InvalidInputError, match="Resize reads its shape setting 'scales'.*no data"):
        load_onnx(m)


def test_weight_free_graph_runs_with_random_weights():
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.ones(64, np.float32), "ones"), numpy_helper.from_array(np.array([0], np.int64), "ax0"),
             numpy_helper.from_array(rng.standard_normal((64, 32)).astype(np.float32), "w")]
    nodes = [helper.make_node("NonZero", ["ones"], ["nz"]), helper.make_node("Squeeze", ["nz", "ax0"], ["idx"]),
             helper.make_node("Gather", ["x", "idx"], ["h"], axis=1), helper.make_node("MatMul", ["h", "w"], ["y"])]
    full = _model(nodes, inits)
    a, b = load_onnx(full), load_onnx(strip_weights(full))
    assert a.meta["shape_path"] == b.meta["shape_path"] == "onnxruntime"
    assert a.nodes[-1].output_shapes == b.nodes[-1].output_shapes == [(1, 32)] and a.flops == b.flops == 2 * 32 * 64


@pytest.mark.parametrize("script, message", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "signal SIGSEGV"),
    ("import os; os.abort()", "signal SIGABRT"),
    ("import time; time.sleep(60)", "took over 1 s"),
    ("x = bytearray(8 << 30)", "out of memory|MemoryError|status"),
])
def test_runtime_child_crash_hang_and_blowup_become_archcast_errors(tmp_path, monkeypatch, script, message):
    worker = tmp_path / "worker.py"
    worker.write_text("import sys\nsys.stdin.buffer.read()\n" + script + "\n")
    monkeypatch.setattr(S, "_WORKER", worker)
    monkeypatch.setattr(S, "RUNTIME_TIMEOUT_S", 1.0)
    t0 = time.perf_counter()
    with pytest.raises(InvalidInputError, match=message) as e:
        load_onnx(_data_dependent(4))
    assert time.perf_counter() - t0 < 10 and "\n" not in str(e.value)


def test_runtime_refuses_graphs_whose_tensors_exceed_the_budget():
    inits = [numpy_helper.from_array(np.ones(64, np.float32), "ones"), numpy_helper.from_array(np.array([0], np.int64), "ax0")]
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 12])  # 16 GiB, weight-free
    nodes = [helper.make_node("NonZero", ["ones"], ["nz"]), helper.make_node("Squeeze", ["nz", "ax0"], ["idx"]),
             helper.make_node("Gather", ["x", "idx"], ["h"], axis=1), helper.make_node("Add", ["h", "w"], ["y"])]
    with pytest.raises(InvalidInputError, match="GiB of tensors"):
        load_onnx(_model(nodes, inits + [w]))


@pytest.mark.parametrize("op, inputs, attrs", [
    ("Range", [np.array(0, np.int64), np.array(1 << 26, np.int64), np.array(1, np.int64)], {}),
    ("ConstantOfShape", [np.array([1 << 15, 1 << 15], np.int64)], {}),
    ("Expand", [np.ones(1, np.float32), np.array([1 << 30], np.int64)], {}),
    ("Tile", [np.ones((2, 2), np.float32), np.array([1 << 20, 1 << 20], np.int64)], {}),
    ("Mul", [np.ones((4096, 1), np.float32), np.ones((1, 4096), np.float32)], {}),
])
def test_folding_refuses_outputs_over_budget_before_allocating(op, inputs, attrs):
    assert fold_node(op, inputs, attrs, 17, 1) is None
    small = fold_node("Range", [np.array(0, np.int64), np.array(FOLD_BUDGET, np.int64), np.array(1, np.int64)], {}, 17, 1)
    assert small is not None and small[0].shape == (FOLD_BUDGET,)


def test_folding_matches_onnx_semantics_on_shape_ops():
    assert fold_node("Div", [np.array([-7], np.int64), np.array([2], np.int64)], {}, 17, 1)[0].tolist() == [-3]
    assert fold_node("Gather", [np.array([2, 3, 4], np.int64), np.array(1, np.int64)], {"axis": 0}, 17, 1)[0].shape == ()
    assert fold_node("Slice", [np.arange(6), np.array([1]), np.array([1 << 62]), np.array([0]), None], {}, 17, 1)[0].tolist() \
        == [1, 2, 3, 4, 5]
    assert fold_node("Reshape", [np.arange(6), np.array([1, 0, -1])], {}, 17, 1) is None  # 0 copies a missing dim
    assert fold_node("Reshape", [np.arange(6).reshape(2, 3), np.array([0, -1])], {}, 17, 1)[0].shape == (2, 3)
    parts = fold_node("Split", [np.arange(5), None], {"axis": 0}, 13, 2)
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4]]
    assert fold_node("Div", [np.array([1], np.int64), np.array([0], np.int64)], {}, 17, 1) is None


def test_no_data_propagation_on_the_common_path(monkeypatch):
    import onnx

    calls = []
    real = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes",
                        lambda m, **kw: calls.append(kw) or real(m, **kw))
    load_onnx(_model([helper.make_node("Relu", ["x"], ["y"])]))
    assert calls == [{"check_type": False, "strict_mode": False, "data_prop": False}]


@pytest.mark.parametrize("action, message", [
    ("segv", "crashed \\(SIGSEGV\\)"), ("hang", "did not finish in 1 s"), ("oom", "out of memory|crashed"),
])
def test_risky_graphs_are_inferred_in_a_guarded_child(monkeypatch, action, message):
    """An Einsum graph goes through a forked child: a crash/hang/blow-up there is an archcast error."""
    import os
    import signal

    def bad(model, label):
        if action == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if action == "hang":
            time.sleep(60)
        return bytearray(S.INFER_EXTRA_BYTES * 4)

    monkeypatch.setattr(S, "_infer_in_process", bad)
    monkeypatch.setattr(S, "INFER_TIMEOUT_S", 1.0)
    m = _model([helper.make_node("Einsum", ["x", "x"], ["y"], equation="ij,ij->i")], x=(2, 3))
    with pytest.raises(InvalidInputError, match=message):
        load_onnx(m)
    assert S._risky(_model([helper.make_node("Relu", ["x"], ["y"])])) is None  # the common path stays in process


def test_malformed_einsum_is_refused_before_native_inference():
    m = _model([helper.make_node("Einsum", ["x", "x"], ["y"], equation="a...b...,c->")], x=(2, 3))
    t0 = time.perf_counter()
    with pytest.raises(InvalidInputError, match="Einsum equation 'a...b...,c->' is not valid"):
        load_onnx(m)
    assert time.perf_counter() - t0 < 5  # refused by the grammar check, not after a native hang
