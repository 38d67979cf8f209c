"""onnxruntime measurement: statistics, weight-free models, inputs, per-node profile, failures."""

from __future__ import annotations

import json
import math
from datetime import datetime

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.errors import InvalidInputError, UnknownNameError
from archcast.frontends.onnx import strip_weights
from archcast.profile import (
    BACKENDS,
    BackendUnavailableError,
    Measurement,
    MeasurementError,
    Platform,
    default_platform,
)
from archcast.profile.backend import get_backend
from archcast.profile.kernels import parse_ort_profile
from archcast.profile.ort import fill_weights, measure_onnx

FAST = dict(min_runs=10, min_time_s=0.02, warmup_runs=2, warmup_s=0.01)
PLATFORM = default_platform()


def conv_model(batch: int | str = 1, channels: int = 8, size: int = 16) -> onnx.ModelProto:
    """Conv(3->channels, 3x3) + Relu on a 3 x size x size input, weights included."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(channels, np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, channels, size, size])], [w, b])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def embedding_model(vocab: int, indirect: bool = False) -> onnx.ModelProto:
    """Gather(table[vocab, 4], ids[1, 8] int64): token ids outside [0, vocab) fail at run time.
    ``indirect``: the ids reach the Gather through an Identity, so no bound can be read off."""
    table = numpy_helper.from_array(np.ones((vocab, 4), np.float32), "table")
    nodes = ([helper.make_node("Identity", ["ids"], ["ids2"]), helper.make_node("Gather", ["table", "ids2"], ["y"])]
             if indirect else [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)])
    g = helper.make_graph(nodes, "emb",
                          [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4])], [table])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_measure_tiny_conv_statistics():
    m = measure_onnx(conv_model().SerializeToString(), PLATFORM, **FAST)
    assert isinstance(m, Measurement)
    assert 0 < m.latency_ms_min <= m.latency_ms_median <= m.latency_ms_p90
    assert m.latency_ms_min <= m.latency_ms_mean and m.latency_ms_std >= 0 and math.isfinite(m.latency_cv)
    assert m.n_runs >= 10 and 1 <= m.warmup_runs <= 2
    assert m.batch_size == 1 and m.input_shapes == {"x": [1, 3, 16, 16]}
    assert m.host and datetime.fromisoformat(m.timestamp).tzinfo is not None
    assert m.session_s > 0 and m.measure_s > 0 and m.node_profile is None
    json.dumps(m.to_dict())  # JSON-able


def test_statistics_from_times_golden():
    m = Measurement.from_times([4.0, 1.0, 3.0, 2.0, 5.0], warmup_runs=0, batch_size=1)
    assert (m.latency_ms_min, m.latency_ms_median, m.latency_ms_mean) == (1.0, 3.0, 3.0)
    assert m.latency_ms_p90 == pytest.approx(4.6)
    assert m.latency_ms_std == pytest.approx(math.sqrt(2.5)) and m.latency_cv == pytest.approx(math.sqrt(2.5) / 3)
    with pytest.raises(ValueError):
        Measurement.from_times([], warmup_runs=0, batch_size=1)


def test_weight_free_model_gets_weights():
    free = strip_weights(conv_model())
    assert not any(len(t.raw_data) or len(t.float_data) for t in free.graph.initializer)
    filled = onnx.ModelProto()
    filled.CopyFrom(free)
    assert fill_weights(filled, seed=1) == 2
    w = {t.name: numpy_helper.to_array(t) for t in filled.graph.initializer}
    assert w["w"].shape == (8, 3, 3, 3) and w["w"].dtype == np.float32 and np.all(np.isfinite(w["w"]))
    assert w["w"].std() > 0 and np.all(w["b"] > 0)  # 1-D tensors stay positive (BN variances)
    assert fill_weights(filled) == 0  # nothing left to fill
    m = measure_onnx(free.SerializeToString(), PLATFORM, **FAST)
    assert m.latency_ms_median > 0


def test_weight_free_resize_scales_are_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    g = helper.make_graph([helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest")], "r", [x], [y],
                          [scales])
    model = strip_weights(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8))
    with pytest.raises(MeasurementError, match="Resize") as e:
        measure_onnx(model, PLATFORM, **FAST)
    assert e.value.stage == "load"


def test_symbolic_batch_and_int_inputs():
    m = measure_onnx(conv_model(batch="N"), PLATFORM, batch_size=3, **FAST)
    assert m.batch_size == 3 and m.input_shapes["x"] == [1 * 3, 3, 16, 16]
    m = measure_onnx(embedding_model(vocab=100), PLATFORM, **FAST)  # token ids drawn from [0, 100)
    assert m.input_shapes == {"ids": [1, 8]}


def test_token_ids_stay_inside_the_embedding_table():
    from archcast.profile.ort import index_bounds
    assert index_bounds(embedding_model(vocab=5)) == {"ids": 5}
    assert index_bounds(embedding_model(vocab=5, indirect=True)) == {}
    measure_onnx(embedding_model(vocab=5), PLATFORM, **FAST)  # ids drawn below 5, not below 100
    measure_onnx(strip_weights(embedding_model(vocab=5)), PLATFORM, **FAST)  # the dims survive stripping


def test_profile_time_cap_keeps_at_least_three_runs():
    m = measure_onnx(conv_model(channels=16), PLATFORM, profile_nodes=True, profile_runs=50, profile_max_s=1e-6,
                     **FAST)
    assert m.node_profile is not None and m.node_profile.runs == 3
    with pytest.raises(InvalidInputError, match="profile_max_s"):
        measure_onnx(conv_model(), PLATFORM, profile_nodes=True, profile_max_s=0, **FAST)


@pytest.mark.parametrize("make, stage, text", [
    (lambda: b"\x08\x01garbage that is not protobuf", "load", "ONNX"),
    (lambda: b"", "load", "empty"),
    (lambda: helper.make_model(helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"])], "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString(), "load", "NoSuchOp"),
    (lambda: embedding_model(vocab=5, indirect=True).SerializeToString(), "run", "indices"),  # ids up to 99
])
def test_broken_onnx_raises_measurement_error(make, stage, text):
    with pytest.raises(MeasurementError) as e:
        measure_onnx(make(), PLATFORM, **FAST)
    assert e.value.stage == stage and e.value.reason
    assert text.lower() in str(e.value).lower()


def test_node_profile():
    m = measure_onnx(conv_model(channels=16), PLATFORM, profile_nodes=True, profile_runs=5, **FAST)
    p = m.node_profile
    assert p is not None and p.runs == 5 and p.nodes and p.run_us > 0
    assert all(n.dur_us >= 0 for n in p.nodes) and 0 < p.coverage <= 1.5
    assert "Conv" in " ".join(p.by_op_type())  # ORT may fuse Conv+Relu into FusedConv
    assert p.summary()["runs"] == 5


def test_parse_ort_profile_skips_warmup_runs(tmp_path):
    events = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        {"cat": "Node", "name": "conv_kernel_time", "ts": 10, "dur": 80, "args": {"op_name": "Conv"}},
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 50},
        {"cat": "Node", "name": "conv_kernel_time", "ts": 210, "dur": 30, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "relu_kernel_time", "ts": 240, "dur": 10, "args": {"op_name": "Relu"}},
        {"cat": "Node", "name": "relu_fence_before", "ts": 239, "dur": 0, "args": {"op_name": "Relu"}},
    ]
    f = tmp_path / "prof.json"
    f.write_text(json.dumps(events))
    p = parse_ort_profile(f, skip_runs=1)
    assert p.runs == 1 and p.run_us == 50
    assert [(n.node, n.op_type, n.dur_us) for n in p.nodes] == [("conv", "Conv", 30.0), ("relu", "Relu", 10.0)]
    assert p.coverage == pytest.approx(0.8)
    f.write_text("[]")
    with pytest.raises(MeasurementError, match="model_run"):
        parse_ort_profile(f)


# ---------------------------------------------------------------------------- platforms and backends
def test_platform_id_is_stable_and_field_sensitive():
    a, b = default_platform(), default_platform()
    assert a == b and a.platform_id == b.platform_id and len(a.platform_id) == 16
    assert a.name == "ort-cpu-1t" and a.threads == 1 and a.graph_opt_level == "all" and a.device
    assert default_platform(threads=2).platform_id != a.platform_id
    assert default_platform(graph_opt_level="basic").name == "ort-cpu-1t-basic"
    assert Platform.from_dict(a.to_dict()) == a
    golden = Platform("p", device="cpu", runtime_version="1.0")
    assert golden.platform_id == Platform("p", device="cpu", runtime_version="1.0").platform_id


@pytest.mark.parametrize("kw, text", [
    ({"threads": 0}, "threads"), ({"graph_opt_level": "max"}, "all, extended, basic, disable"),
    ({"precision": "int3"}, "fp32"), ({"backend": "tpu"}, "onnxruntime-cpu"), ({"name": "a b"}, "whitespace"),
])
def test_platform_validation_names_the_allowed_values(kw, text):
    with pytest.raises(InvalidInputError, match=text):
        Platform(**{"name": "p", **kw})


def test_backends_registry():
    assert {"onnxruntime-cpu", "torch-cuda"} <= set(BACKENDS.names())
    with pytest.raises(UnknownNameError, match="onnxruntime-cpu"):
        get_backend("tpu")
    m = get_backend("onnxruntime-cpu").measure(conv_model().SerializeToString(), default_platform(), 1, **FAST)
    assert m.latency_ms_median > 0


def test_torch_cuda_backend_without_gpu_is_clear():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(BackendUnavailableError, match="torch.cuda.is_available"):
        get_backend("torch-cuda").measure(b"", Platform("gpu", backend="torch-cuda"), 1)


def test_platform_must_describe_this_machine():
    wrong = Platform("ort-cpu-1t", device=default_platform().device, runtime_version="0.0.1")
    with pytest.raises(InvalidInputError, match="runtime_version"):
        measure_onnx(conv_model(), wrong, **FAST)


# ---------------------------------------------------------------------------- CPU time and kernel profiles
def test_thread_cpu_time_is_recorded_for_one_thread_only():
    m = measure_onnx(conv_model(channels=16), PLATFORM, **FAST)
    assert m.cpu_ms_min is not None and m.cpu_ms_median is not None and m.cpu_cv is not None
    # the caller's thread runs every kernel: its CPU time cannot exceed the run's wall time (+1 tick)
    assert m.cpu_ms_min <= m.latency_ms_median + 0.05 and m.cpu_ms_median > 0.2 * m.latency_ms_min
    two = measure_onnx(conv_model(channels=16), default_platform(threads=2), **FAST)
    assert two.cpu_ms_min is None and two.cpu_ms_median is None


def test_kernel_median_is_robust_to_one_slow_run(tmp_path):
    events = []
    for k, conv_us in enumerate([30, 31, 900, 29, 30]):  # run 2 was preempted inside the conv
        t0 = 1000 * k
        events += [{"cat": "Session", "name": "model_run", "ts": t0, "dur": conv_us + 20},
                   {"cat": "Node", "name": "conv_kernel_time", "ts": t0 + 5, "dur": conv_us, "args": {"op_name": "Conv"}}]
    f = tmp_path / "prof.json"
    f.write_text(json.dumps(events))
    p = parse_ort_profile(f)
    assert p.runs == 5 and p.nodes[0].dur_us == 30.0 and p.run_us == 50.0


def test_kernel_profile_keeps_the_optimized_graph_as_ir():
    from archcast.frontends.onnx import load_onnx

    # 64x64 so the kernels, not the ~10 us of per-run framework overhead, fill the run (a 16x16 conv ran
    # 5 us of a 17 us run on a loaded CI machine: coverage 0.47)
    model = conv_model(channels=16, size=64)
    m = measure_onnx(model, PLATFORM, profile_nodes=True, profile_runs=5, keep_optimized=True, **FAST)
    p = m.node_profile
    opt = onnx.load_from_string(p.optimized_onnx)
    assert not any(len(t.raw_data) or len(t.float_data) for t in opt.graph.initializer)  # weight-free
    graph = load_onnx(p.optimized_onnx)
    kernel_nodes = {n.node for n in p.nodes}
    # every profiled kernel is a node of the optimised graph, and the IR has them all
    assert kernel_nodes <= {n.name for n in opt.graph.node}
    assert kernel_nodes <= {n.name for n in graph.nodes}
    assert 0.3 < p.coverage <= 1.05 and graph.flops > 0


def _profiled_optimized(tmp_path, model):
    """A profiled run of ``model`` that saves its optimised graph: (path, feeds, the profiler's shapes)."""
    from archcast.profile.kernels import profile_output_shapes, read_profile_events
    from archcast.profile.ort import _session, prepare_model, random_inputs

    label, data, highs, _ = prepare_model(model, "m", 0)
    opt = str(tmp_path / "opt.onnx")
    sess = _session(data, PLATFORM, label, profile_prefix=str(tmp_path / "p"), optimized_path=opt)
    feeds = random_inputs(sess, 1, int_highs=highs)
    for _ in range(3):
        sess.run(None, feeds)
    return opt, feeds, profile_output_shapes(read_profile_events(sess.end_profiling()))


def test_optimized_shapes_from_the_profiler_match_a_run_with_every_tensor_out(tmp_path):
    from archcast.profile.kernels import annotate_optimized
    from archcast.profile.ort import session_options

    # conv (NCHWc + reorders once optimised) -> ArgMax (an int64 tensor) -> Cast -> Add
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("ArgMax", ["r"], ["am"], name="argmax", axis=1, keepdims=1),
             helper.make_node("Cast", ["am"], ["f"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Add", ["r", "f"], ["y"], name="add")]
    g = helper.make_graph(nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32, 32])], [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    opt, feeds, shapes = _profiled_optimized(tmp_path, model)
    by_run = annotate_optimized(opt, feeds, session_options(PLATFORM), "m")
    assert annotate_optimized(opt, feeds, session_options(PLATFORM), "m", profiled=shapes) == by_run
    annotated = onnx.load_from_string(by_run)
    types = {v.name: v.type.tensor_type.elem_type for v in annotated.graph.value_info}
    assert TensorProto.INT64 in types.values() and len(types) >= 4
    # kernels the profiler did not list: the run fills the gap, same result
    assert annotate_optimized(opt, feeds, session_options(PLATFORM), "m", profiled={}) == by_run
    wrong = {k: [(TensorProto.DOUBLE, d) for _, d in v] for k, v in shapes.items()}
    assert annotate_optimized(opt, feeds, session_options(PLATFORM), "m", profiled=wrong) != by_run
