"""ONNX frontend: weight-free models, dynamic shapes, bad files, constant folding, edges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.errors import InvalidInputError
from archcast.frontends.onnx import load_onnx, strip_weights

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "archcast" / "examples" / "resnet18.onnx"


def _w(name: str, *shape: int) -> TensorProto:
    return numpy_helper.from_array(np.random.default_rng(0).standard_normal(shape).astype(np.float32), name)


def _model(nodes, inits, in_dims=(1, 8, 8, 8), extra_inputs=(), outputs=("y",), opset=17) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_dims)), *extra_inputs]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    graph = helper.make_graph(nodes, "g", inputs, outs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _conv(name: str, x: str, y: str, c: int = 8) -> tuple[onnx.NodeProto, list[TensorProto]]:
    node = helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [y], name=name, kernel_shape=[3, 3],
                            pads=[1, 1, 1, 1])
    return node, [_w(f"{name}.w", c, c, 3, 3), _w(f"{name}.b", c)]


def _residual_model(in_dims=(1, 8, 8, 8)) -> onnx.ModelProto:
    """conv0 -> relu0 -> conv1 -> relu1 -> conv2 -> add(conv2, relu0) -> relu2, with a BN after conv0."""
    c0, i0 = _conv("conv0", "x", "c0")
    c1, i1 = _conv("conv1", "r0", "c1")
    c2, i2 = _conv("conv2", "r1", "c2")
    bn = helper.make_node("BatchNormalization", ["c0", "s", "bb", "m", "v"], ["n0"], name="bn0", epsilon=1e-5)
    bn_inits = [_w(n, 8) for n in ("s", "bb", "m", "v")]
    nodes = [c0, bn, helper.make_node("Relu", ["n0"], ["r0"], name="relu0"), c1,
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"), c2,
             helper.make_node("Add", ["c2", "r0"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["y"], name="relu2")]
    return _model(nodes, i0 + i1 + i2 + bn_inits, in_dims)


def _strip_by_hand(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weight-free as NNLQP ships it: float initializers keep dims, lose raw_data/float_data."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.ClearField("raw_data")
            t.ClearField("float_data")
    return m


# ---------------------------------------------------------------------------- weight-free
def test_weight_free_file_loads_like_the_full_model(tmp_path):
    full = _residual_model()
    path = tmp_path / "nowts.onnx"
    path.write_bytes(_strip_by_hand(full).SerializeToString())
    assert all(not t.raw_data and not t.float_data for t in onnx.load(str(path)).graph.initializer)
    g, ref = load_onnx(path), load_onnx(full)
    assert g.name == "nowts" and g.meta == {"source": "onnx", "batch_size": 1, "opset": 17, "producer": "", "shape_path": "onnx"}
    assert g.fingerprint() == ref.fingerprint()
    assert (g.flops, g.params, g.memory_bytes) == (ref.flops, ref.params, ref.memory_bytes)
    assert g.params == 3 * (8 * 8 * 9 + 8) + 4 * 8


def test_strip_weights_matches_hand_stripping_and_keeps_int_initializers():
    full = _residual_model()
    full.graph.initializer.append(numpy_helper.from_array(np.array([1, -1], np.int64), "shape"))
    stripped = strip_weights(full)
    assert len(full.graph.initializer[0].raw_data) > 0  # the input is not modified
    kept = {t.name: t for t in stripped.graph.initializer}
    assert not kept["conv0.w"].raw_data and list(kept["conv0.w"].dims) == [8, 8, 3, 3]
    assert numpy_helper.to_array(kept["shape"]).tolist() == [1, -1]
    assert load_onnx(stripped).fingerprint() == load_onnx(_strip_by_hand(full)).fingerprint()


def test_shipped_resnet18_example_is_weight_free_and_loads():
    assert EXAMPLE.stat().st_size < 200_000
    floats = [t for t in onnx.load(str(EXAMPLE)).graph.initializer if t.data_type == TensorProto.FLOAT]
    assert floats and all(not t.raw_data and not t.float_data for t in floats)
    g = load_onnx(EXAMPLE)
    assert g.name == "resnet18" and g.inputs == {"input": (1, 3, 224, 224)}
    assert g.op_counts() == {"Conv": 20, "Relu": 17, "Add": 8, "Flatten": 1, "Gemm": 1,
                             "GlobalAveragePool": 1, "MaxPool": 1}
    # torchvision ResNet-18 has 11,689,512 params; fusing its 4,800 BN channels into conv biases
    # drops one parameter per channel. 1.82 GMACs -> about 3.64 GFLOPs.
    assert g.params == 11_689_512 - 4_800
    assert 3.60e9 < g.flops < 3.66e9
    assert len(g.edges) == 56  # 48 chain edges + 8 shortcut edges into the Adds


# ---------------------------------------------------------------------------- input shapes
@pytest.mark.parametrize("dim0", ["batch", 0, -1])
def test_dynamic_input_needs_a_shape(dim0):
    m = _residual_model(in_dims=(dim0, 8, 8, 8))
    with pytest.raises(InvalidInputError) as err:
        load_onnx(m)
    msg = str(err.value)
    assert "'x'" in msg and "--input-shape x=1,8,8,8" in msg and "\n" not in msg
    g = load_onnx(m, input_shapes={"x": (2, 8, 8, 8)})
    assert g.inputs == {"x": (2, 8, 8, 8)} and g.meta["batch_size"] == 2
    assert g.nodes[0].output_shapes == [(2, 8, 8, 8)]
    assert m.graph.input[0].type.tensor_type.shape.dim[0] != 2  # the caller's model is not modified


def test_input_shape_override_and_errors():
    m = _residual_model()
    g4 = load_onnx(m, input_shapes={"x": "4,8,16,16"})
    assert g4.nodes[-1].output_shapes == [(4, 8, 16, 16)] and g4.meta["batch_size"] == 4
    assert g4.flops > 4 * load_onnx(m).flops - 1
    with pytest.raises(InvalidInputError, match="'image'.*'x'"):
        load_onnx(m, input_shapes={"image": (1, 8, 8, 8)})
    with pytest.raises(InvalidInputError, match="rank 4"):
        load_onnx(m, input_shapes={"x": (1, 8, 8)})
    with pytest.raises(InvalidInputError, match="positive"):
        load_onnx(m, input_shapes={"x": (1, 8, 0, 8)})


# ---------------------------------------------------------------------------- bad files
def _bad_sources(tmp_path: Path) -> dict[str, Path]:
    good = _residual_model().SerializeToString()
    (tmp_path / "text.onnx").write_text("this is not a model, just some text\n")
    (tmp_path / "trunc.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(1).bytes(3000))
    return {"missing": tmp_path / "missing.onnx", "text": tmp_path / "text.onnx",
            "truncated": tmp_path / "trunc.onnx", "empty": tmp_path / "empty.onnx",
            "noise": tmp_path / "noise.onnx", "directory": tmp_path}


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "empty", "noise", "directory"])
def test_bad_files_raise_one_line_naming_the_file(tmp_path, kind):
    path = _bad_sources(tmp_path)[kind]
    with pytest.raises(InvalidInputError) as err:
        load_onnx(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg


def test_truncated_at_every_cut_is_rejected_or_complete():
    good = _residual_model().SerializeToString()
    full = load_onnx(good).fingerprint()
    for cut in range(1, len(good), max(1, len(good) // 97)):
        try:
            g = load_onnx(good[:cut])
        except InvalidInputError as e:
            assert "\n" not in str(e)
        else:  # a cut that drops only trailing metadata must still give the whole graph
            assert g.fingerprint() == full, cut


def test_wrong_source_type():
    with pytest.raises(InvalidInputError, match="list"):
        load_onnx([1, 2])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- folding and edges
def test_constants_are_folded_into_their_consumers():
    shape = helper.make_node("Constant", [], ["shp"], value=numpy_helper.from_array(np.array([1, -1], np.int64)))
    scale = helper.make_node("Constant", [], ["sc"], value=_w("sc_v", 8, 1, 1))
    half = helper.make_node("Constant", [], ["half"], value_float=0.5)
    wt = helper.make_node("Transpose", ["w_t"], ["w"], perm=[1, 0])  # constant-only: folded too
    nodes = [shape, scale, half, wt,
             helper.make_node("Mul", ["x", "sc"], ["m"], name="scale"),
             helper.make_node("Mul", ["m", "half"], ["h"], name="halve"),
             helper.make_node("Reshape", ["h", "shp"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "w"], ["y"], name="fc")]
    g = load_onnx(_model(nodes, [_w("w_t", 10, 512)]))
    assert [n.op_type for n in g.nodes] == ["Mul", "Mul", "Reshape", "MatMul"]
    assert [n.params for n in g.nodes] == [8, 0, 0, 5120]  # a scalar factor is a setting
    assert g.nodes[2].attrs["shape"] == (1, -1)  # integer settings become attributes
    assert [len(n.input_shapes) for n in g.nodes] == [1, 1, 1, 1]  # activations only
    assert g.edges == [(0, 1), (1, 2), (2, 3)]
    assert g.nodes[3].flops == 2 * 10 * 512


def test_integer_arithmetic_on_constants_is_evaluated_for_shapes():
    # Shape inference cannot see through Mod; the frontend evaluates constant-only ops first.
    ints = lambda name, v: helper.make_node(  # noqa: E731
        "Constant", [], [name], value=numpy_helper.from_array(np.array(v, np.int64)))
    nodes = [ints("a", [1, 512]), ints("b", [1000, 1000]), helper.make_node("Mod", ["a", "b"], ["shp"]),
             helper.make_node("Reshape", ["x", "shp"], ["y"], name="flat")]
    g = load_onnx(_model(nodes, []))
    assert [n.op_type for n in g.nodes] == ["Reshape"]
    assert g.nodes[0].output_shapes == [(1, 512)] and g.nodes[0].attrs["shape"] == (1, 512)


def test_constant_feeding_a_graph_output_stays_a_node():
    const = helper.make_node("Constant", [], ["k"], value=_w("kv", 3))
    g = load_onnx(_model([helper.make_node("Relu", ["x"], ["y"]), const], [], outputs=("y", "k")))
    assert [n.op_type for n in g.nodes] == ["Relu", "Constant"]
    assert g.nodes[1].attrs["value"] == (3,) and g.edges == []


def test_residual_block_edges_and_attributes():
    g = load_onnx(_residual_model())
    names = [n.name for n in g.nodes]
    assert names == ["conv0", "bn0", "relu0", "conv1", "relu1", "conv2", "add", "relu2"]
    idx = {n: i for i, n in enumerate(names)}
    expected = {("conv0", "bn0"), ("bn0", "relu0"), ("relu0", "conv1"), ("conv1", "relu1"),
                ("relu1", "conv2"), ("conv2", "add"), ("relu0", "add"), ("add", "relu2")}
    assert set(g.edges) == {(idx[a], idx[b]) for a, b in expected} and len(g.edges) == len(expected)
    conv = g.nodes[0]
    assert conv.attrs == {"kernel_shape": (3, 3), "pads": (1, 1, 1, 1)}
    assert conv.input_shapes == [(1, 8, 8, 8)] and conv.params == 8 * 8 * 9 + 8
    assert g.nodes[1].attrs == {"epsilon": 1e-5} and g.nodes[1].params == 32
    assert g.nodes[idx["add"]].input_shapes == [(1, 8, 8, 8), (1, 8, 8, 8)]


def test_duplicate_inputs_give_one_edge_and_nodes_are_sorted():
    nodes = [helper.make_node("Mul", ["r", "r"], ["y"], name="sq"),  # listed before its producer
             helper.make_node("Relu", ["x"], ["r"], name="relu")]
    g = load_onnx(_model(nodes, []))
    assert [n.name for n in g.nodes] == ["relu", "sq"] and g.edges == [(0, 1)]


def test_attribute_kinds_are_decoded():
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="linear",
                            coordinate_transformation_mode="align_corners", cubic_coeff_a=-0.75)
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    g = load_onnx(_model([node], [scales]))
    up = g.nodes[0]
    assert up.attrs == {"mode": "linear", "coordinate_transformation_mode": "align_corners", "cubic_coeff_a": -0.75}
    assert up.params == 0 and up.output_shapes == [(1, 8, 16, 16)]
    assert up.flops == 2 * 4 * 8 * 16 * 16


def test_unknown_op_uses_generic_cost():
    g = load_onnx(_model([helper.make_node("Softsign", ["x"], ["y"])], []))
    assert g.nodes[0].op_type == "Softsign" and g.nodes[0].flops == 512 and g.nodes[0].name == "Softsign_0"


def test_import_does_not_pull_torch():
    code = ("import sys, archcast.frontends, archcast.frontends.onnx, archcast.graph.summary; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------- without the onnx package
DATA_SET = Path(__file__).resolve().parents[2] / "datasets" / "ort-cpu-1t-v2" / "models.csv"
# one model per kind of network: convolutions, depthwise + squeeze-excite, attention, a graph network
GOLDEN_FAMILIES = ("alexnet", "resnet", "mobilenetv3", "efficientformer", "vit", "gcn")


def _data_set_rows() -> list[dict]:
    import csv

    if not DATA_SET.exists():
        pytest.skip(f"{DATA_SET} is not in this checkout")
    with DATA_SET.open() as f:
        rows = {}
        for r in csv.DictReader(f):
            rows.setdefault(r["family"], r)
    return [rows[f] for f in GOLDEN_FAMILIES if f in rows]


def test_graphs_are_those_of_the_committed_data_set_and_readme():
    """Golden values made before the frontend read ONNX without the onnx package: the graphs of
    a measurement campaign (datasets/ort-cpu-1t-v2, exported by the same zoo) and the README's
    example output."""
    from archcast.zoo import export_sample, get_family

    rows = _data_set_rows()
    assert len(rows) >= 4
    for r in rows:
        family = get_family(r["family"])
        if family.version != r["generator_version"]:
            continue  # the family's configs changed since the campaign
        sample = family.sample(int(r["seed"]))
        for weight_free in (True, False):
            g = load_onnx(export_sample(sample, weight_free=weight_free))
            assert (g.fingerprint(), len(g.nodes), g.flops, g.params, g.memory_bytes) == (
                r["fingerprint"], int(r["n_nodes"]), int(r["flops"]), int(r["params"]), int(r["memory_bytes"])), r["family"]
    g = load_onnx(EXAMPLE)
    assert g.fingerprint() == "34996e4c0802e129eeff2c6573e36ab4" and round(g.flops / 1e9, 2) == 3.64
    assert load_onnx(onnx.load(str(EXAMPLE)), name="resnet18") == g  # a ModelProto reads as its file


@pytest.mark.subprocess
def test_reading_onnx_imports_no_onnx_and_gives_the_same_graphs(tmp_path):
    """load_onnx and runtime_graph in a process without onnx (and its ml_dtypes) give the graphs
    this process (onnx imported) gives: a weight-free file, one with weights (external data too),
    and a dynamic-shapes export whose shapes need folding."""
    from onnx.external_data_helper import convert_model_to_external_data

    from archcast.zoo import export_sample, get_family

    sample = get_family("mobilenetv3").sample(0)
    (tmp_path / "free.onnx").write_bytes(export_sample(sample))
    (tmp_path / "weights.onnx").write_bytes(export_sample(sample, weight_free=False))
    ext = onnx.load_model_from_string(export_sample(sample, weight_free=False))
    convert_model_to_external_data(ext, location="weights.bin", size_threshold=0)
    onnx.save(ext, str(tmp_path / "external.onnx"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])
    shape = helper.make_node("Shape", ["x"], ["s"])
    reshape = helper.make_node("Reshape", ["x", "s"], ["r"])
    relu = helper.make_node("Relu", ["r"], ["y"])
    dyn = helper.make_model(helper.make_graph([shape, reshape, relu], "dyn", [x],
                                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]),
                            opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "dynamic.onnx").write_bytes(dyn.SerializeToString())
    paths = [EXAMPLE, *(tmp_path / f"{n}.onnx" for n in ("free", "weights", "external", "dynamic"))]
    code = f"""
import sys, json
from archcast.frontends.onnx import load_onnx
from archcast.profile.runtime_graph import runtime_graph
out = [load_onnx(p, input_shapes={{"x": (4, 8)}} if "dynamic" in p else None).to_dict() for p in {[str(p) for p in paths]!r}]
rg = runtime_graph({str(EXAMPLE)!r})
print(json.dumps([out, rg.graph.to_dict(), sorted(m for m in ("onnx", "ml_dtypes", "torch") if m in sys.modules)]))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    import json

    from archcast.graph.ir import NetGraph

    graphs, runtime, imported = json.loads(p.stdout.strip().splitlines()[-1])
    assert imported == []
    assert [g["meta"]["shape_path"] for g in graphs] == ["onnx", "onnx", "onnx", "onnx", "folded"]
    for path, g in zip(paths, graphs):
        here = load_onnx(path, input_shapes={"x": (4, 8)} if "dynamic" in str(path) else None)
        assert g == json.loads(here.to_json()), path
    from archcast.profile.runtime_graph import runtime_graph

    here = runtime_graph(EXAMPLE).graph  # onnxruntime may list its inserted kernels in another order
    assert NetGraph.from_dict(runtime).fingerprint() == here.fingerprint()
    assert sorted(n["name"] for n in runtime["nodes"]) == sorted(n.name for n in here.nodes)
