"""runtime_graph: onnxruntime's optimised graph as IR, and the map from its kernels back to the model."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.errors import InvalidInputError
from archcast.frontends.onnx import strip_weights
from archcast.profile import MeasurementError, Platform, default_platform
from archcast.profile.ort import measure_onnx
from archcast.profile.runtime_graph import RuntimeGraph, node_names, runtime_graph

FAST = dict(min_runs=2, min_time_s=0.0, warmup_runs=1, warmup_s=0.0)
PLATFORM = default_platform()


def _model(nodes: list[onnx.NodeProto], inits: list[TensorProto], x_shape: list, y_shape: list,
           x_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", x_type, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _f32(a: np.ndarray, name: str) -> TensorProto:
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def conv_bn_relu_model(channels: int = 16, size: int = 16, head: bool = False) -> onnx.ModelProto:
    """Conv(3->channels) + BatchNormalization + Relu; ``head`` adds pooling, an unnamed MatMul and
    an unnamed HardSwish (a function onnxruntime inlines into unnamed kernels)."""
    rng = np.random.default_rng(0)
    inits = [_f32(rng.standard_normal((channels, 3, 3, 3)), "w"), _f32(np.zeros(channels), "b"),
             _f32(np.ones(channels), "scale"), _f32(np.zeros(channels), "shift"), _f32(np.zeros(channels), "mean"),
             _f32(np.ones(channels), "var")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["r" if head else "y"], name="relu")]
    y_shape = [1, channels, size, size]
    if head:
        inits.append(_f32(rng.standard_normal((channels, 10)), "fc"))
        nodes += [helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
                  helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
                  helper.make_node("MatMul", ["f", "fc"], ["m"]),
                  helper.make_node("HardSwish", ["m"], ["y"])]
        y_shape = [1, 10]
    return _model(nodes, inits, [1, 3, size, size], y_shape)


def shape_reshape_model() -> onnx.ModelProto:
    """Relu -> Reshape whose shape is computed by Shape/Gather/Unsqueeze/Concat -> Identity ->
    Dropout -> Sigmoid."""
    ints = [numpy_helper.from_array(np.array(v, np.int64), name) for v, name in ((0, "i0"), ([0], "ax"), ([-1], "m1"))]
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Shape", ["r"], ["sh"], name="shape"),
             helper.make_node("Gather", ["sh", "i0"], ["g0"], name="gather", axis=0),
             helper.make_node("Unsqueeze", ["g0", "ax"], ["u0"], name="unsqueeze"),
             helper.make_node("Concat", ["u0", "m1"], ["new_shape"], name="concat", axis=0),
             helper.make_node("Reshape", ["r", "new_shape"], ["flat"], name="reshape"),
             helper.make_node("Identity", ["flat"], ["same"], name="identity"),
             helper.make_node("Dropout", ["same"], ["kept"], name="dropout"),
             helper.make_node("Sigmoid", ["kept"], ["y"], name="sigmoid")]
    return _model(nodes, ints, [2, 3, 4, 4], [2, 48])


def assert_total(rg: RuntimeGraph, model: onnx.ModelProto) -> None:
    """Every model node in exactly one kernel's origin or in ``eliminated``; kernels = IR nodes."""
    placed = [x for nodes in rg.origin.values() for x in nodes] + list(rg.eliminated)
    assert sorted(placed) == sorted(node_names(model.graph)), "the map is not total and disjoint"
    opt = onnx.load_from_string(rg.optimized_onnx)
    assert list(rg.origin) == [n.name for n in opt.graph.node] and all(rg.origin)
    assert {n.name for n in rg.graph.nodes} == set(rg.origin)


def op_types(model: onnx.ModelProto, names: tuple[str, ...]) -> Counter:
    by_name = dict(zip(node_names(model.graph), model.graph.node))
    return Counter(by_name[x].op_type for x in names)


# ---------------------------------------------------------------------------- tiny models
def test_conv_bn_relu_is_one_kernel():
    model = conv_bn_relu_model()
    rg = runtime_graph(model, PLATFORM)
    assert_total(rg, model)
    holding = [k for k, nodes in rg.origin.items() if set(nodes) & {"conv", "bn", "relu"}]
    assert len(holding) == 1 and rg.origin[holding[0]] == ("conv", "bn", "relu")
    assert rg.eliminated == ()
    assert all(rg.origin[k] == () for k in rg.origin if k != holding[0])  # layout reorders the runtime inserted
    assert rg.kernel_of("bn") == holding[0] and rg.graph.flops > 0
    with pytest.raises(InvalidInputError, match="not a node"):
        rg.kernel_of("no_such_node")
    assert rg.summary() == {"nodes": 3, "kernels": len(rg.origin), "eliminated": 0, "inserted": len(rg.origin) - 1}


def test_kernel_names_are_the_names_the_profiler_reports():
    model = conv_bn_relu_model(head=True)  # named nodes, unnamed nodes, an inlined function
    rg = runtime_graph(model, PLATFORM)
    assert_total(rg, model)
    m = measure_onnx(model, PLATFORM, profile_nodes=True, profile_runs=1, keep_optimized=True, **FAST)
    assert {n.node for n in m.node_profile.nodes} == set(rg.origin) == {n.name for n in rg.graph.nodes}
    profiled = onnx.load_from_string(m.node_profile.optimized_onnx)
    ours = onnx.load_from_string(rg.optimized_onnx)
    assert [n.op_type for n in profiled.graph.node] == [n.op_type for n in ours.graph.node]  # the same graph
    assert rg.kernel_of("MatMul_5") == "MatMul_5"  # an unnamed node onnxruntime kept: <op_type>_<index>
    assert rg.kernel_of("HardSwish_6") is not None  # inlined (HardSigmoid + Mul): in the kernel writing its output


def test_weight_free_model_gives_the_same_graph():
    model = conv_bn_relu_model()
    free = strip_weights(model)
    assert not any(len(t.raw_data) or len(t.float_data) for t in free.graph.initializer)
    a, b = runtime_graph(model), runtime_graph(free.SerializeToString())
    assert a.origin == b.origin and a.eliminated == b.eliminated
    opt = onnx.load_from_string(b.optimized_onnx)
    floats = [t for t in opt.graph.initializer if t.data_type == TensorProto.FLOAT]
    assert floats and not any(len(t.raw_data) or len(t.float_data) for t in floats)
    assert {v.name for v in opt.graph.value_info} >= {o for n in opt.graph.node for o in n.output} - {"y"}


def test_shape_arithmetic_identity_and_dropout_are_eliminated():
    model = shape_reshape_model()
    rg = runtime_graph(model)
    assert_total(rg, model)
    # onnxruntime folds Shape -> Gather -> Unsqueeze -> Concat into the Reshape's shape initializer
    assert rg.eliminated == ("shape", "gather", "unsqueeze", "concat", "identity", "dropout")
    assert rg.origin == {"relu": ("relu",), "reshape": ("reshape",), "sigmoid": ("sigmoid",)}
    assert rg.kernel_of("dropout") is None


def test_unnamed_nodes_get_stable_names():
    c = numpy_helper.from_array(np.ones((1, 5), np.float32))
    nodes = [helper.make_node("Constant", [], ["c"], value=c), helper.make_node("Add", ["x", "c"], ["a"]),
             helper.make_node("Sigmoid", ["a"], ["s"], name="sig"), helper.make_node("Softmax", ["s"], ["y"], axis=-1)]
    model = _model(nodes, [], [1, 5], [1, 5])
    assert node_names(model.graph) == ["Constant_c0", "Add_0", "sig", "Softmax_2"]
    rg = runtime_graph(model)
    assert_total(rg, model)
    assert rg.eliminated == ("Constant_c0",)
    assert rg.origin == {"Add_0": ("Add_0",), "sig": ("sig",), "Softmax_2": ("Softmax_2",)}
    model.graph.node[2].name = "Add_0"  # taken by the name an unnamed node gets: the later one is told apart
    assert node_names(model.graph) == ["Constant_c0", "Add_0", "Add_0_2", "Softmax_2"]


@pytest.mark.parametrize("make, stage, text", [
    (lambda: b"\x08\x01garbage that is not protobuf", "load", "ONNX"),
    (lambda: _model([helper.make_node("NoSuchOp", ["x"], ["y"])], [], [1], [1]).SerializeToString(), "load",
     "NoSuchOp"),
    (lambda: _model([helper.make_node("Identity", ["x"], ["ids"]), helper.make_node("Gather", ["t", "ids"], ["g"]),
                     helper.make_node("Relu", ["g"], ["y"])],  # token ids up to 99 into a table of 5 rows
                    [_f32(np.ones((5, 4)), "t")], [1, 8], [1, 8, 4], TensorProto.INT64), "profile", "indices"),
])
def test_broken_model_raises_measurement_error(make, stage, text):
    with pytest.raises(MeasurementError) as e:
        runtime_graph(make(), PLATFORM)
    assert e.value.stage == stage and e.value.reason and "\n" not in e.value.reason
    assert text.lower() in str(e.value).lower()


def test_arguments_are_checked():
    with pytest.raises(InvalidInputError, match="onnxruntime"):
        runtime_graph(conv_bn_relu_model(), Platform("gpu", backend="torch-cuda"))
    with pytest.raises(InvalidInputError, match="batch_size"):
        runtime_graph(conv_bn_relu_model(), batch_size=0)


# ---------------------------------------------------------------------------- zoo models
def test_zoo_resnet_residual_add_and_relu_run_in_the_conv():
    pytest.importorskip("torch")
    from archcast.zoo import ZooSample, export_sample

    config = {"block": "basic", "expansion": 1, "stem_channels": 16, "widths": [16, 16, 32, 32],
              "depths": [2, 1, 1, 1], "kernels": [3, 3, 3, 3]}
    model = onnx.load_from_string(export_sample(ZooSample("resnet", 0, config)))
    rg = runtime_graph(model)
    assert_total(rg, model)
    assert set(op_types(model, rg.eliminated)) <= {"Identity", "Constant"}
    nodes = dict(zip(node_names(model.graph), model.graph.node))
    adds = [x for x, n in nodes.items() if n.op_type == "Add"]
    assert len(adds) == 5
    for add in adds:  # conv + residual Add + block Relu: one NCHWc conv with a Sum input
        kernel = rg.kernel_of(add)
        ops = op_types(model, rg.origin[kernel])
        assert ops == Counter({"Conv": 1, "Add": 1, "Relu": 1}), (kernel, ops)
    convs = [x for x, n in nodes.items() if n.op_type == "Conv"]
    assert len({rg.kernel_of(x) for x in convs}) == len(convs)  # one kernel per conv


def test_zoo_bert_fusions_map_back():
    pytest.importorskip("torch")
    from archcast.zoo import ZooSample, export_sample, get_family

    family = get_family("bert")
    model = onnx.load_from_string(export_sample(ZooSample("bert", 0, family.tiny_config(), family.version)))
    rg = runtime_graph(model)
    assert_total(rg, model)
    by_name = dict(zip(node_names(model.graph), model.graph.node))
    weights = {t.name for t in model.graph.initializer}
    reader = {x: name for name, n in by_name.items() for x in n.input}
    biased = 0
    for name, n in by_name.items():
        if n.op_type == "Erf":  # the whole GELU in one kernel
            assert op_types(model, rg.origin[rg.kernel_of(name)]) == Counter({"Mul": 2, "Div": 1, "Erf": 1, "Add": 1})
        add = by_name.get(reader.get(n.output[0], ""))
        if n.op_type == "MatMul" and add is not None and add.op_type == "Add" and set(add.input) & weights:
            assert rg.kernel_of(name) == rg.kernel_of(reader[n.output[0]])  # MatMul + bias: one Gemm
            biased += 1
    assert biased >= 4 and set(op_types(model, rg.eliminated)) <= {"Identity", "Constant"}
