"""Every corpus network loads (legacy exporter, static and dynamic axes; dynamo where available),
through the shape path it needs; big graphs (3,000 nodes, opset 7 and 22, external data) load."""

from __future__ import annotations

import io
import time
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.frontends import shapes as S
from archcast.frontends.onnx import load_onnx
from archcast.graph.summary import format_summary

torch = pytest.importorskip("torch")
from corpus import CORPUS, export  # noqa: E402

# Shape path each corpus entry takes (static export, dynamic-axes export). "folded": ONNX inference
# alone leaves a value unknown and archcast's folding of the shape sub-graph recovers it.
EXPECTED_PATH = {
    "window_attention": ("folded", "folded"),
    "channel_shuffle": ("onnx", "folded"),
    "weight_standardisation": ("onnx", "onnx"),
    "same_padding": ("onnx", "folded"),
    "unfold": ("folded", "folded"),
    "gated_mlp": ("onnx", "folded"),
    "lstm_mixer": ("folded", "folded"),
    "upsampling_decoder": ("folded", "folded"),
    "patch_merging": ("onnx", "folded"),
    "self_attention": ("folded", "folded"),
    "cyclic_shift": ("onnx", "onnx"),
    "grid_attention": ("onnx", "folded"),
    "pixel_shuffle": ("onnx", "onnx"),
    "squeeze_excite": ("onnx", "onnx"),
    "pos_embedding": ("onnx", "folded"),
    "encoder_layer": ("folded", "folded"),
    "einsum_mixer": ("onnx", "onnx"),
    "gru_head": ("folded", "folded"),
}
_CACHE: dict[tuple[str, bool], bytes] = {}


def _bytes(name: str, dynamic: bool) -> bytes:
    if (name, dynamic) not in _CACHE:
        _CACHE[(name, dynamic)] = export(name, dynamic)
    return _CACHE[(name, dynamic)]


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_model_loads(name, dynamic):
    shape = CORPUS[name][1]
    g = load_onnx(_bytes(name, dynamic), input_shapes={"x": shape} if dynamic else None, name=name)
    assert g.meta["shape_path"] == EXPECTED_PATH[name][dynamic]
    assert g.inputs == {"x": shape}
    assert g.flops > 0 and all(all(d >= 0 for d in s) for n in g.nodes for s in n.output_shapes)
    assert f"shapes       {g.meta['shape_path']}" in format_summary(g)


def test_static_and_dynamic_exports_agree_on_compute():
    """Dynamic exports add shape arithmetic (and compute positional tables in-graph), never different
    heavy compute."""
    for name, (_, shape) in CORPUS.items():
        a = load_onnx(_bytes(name, False))
        b = load_onnx(_bytes(name, True), input_shapes={"x": shape})
        heavy = ("Conv", "ConvTranspose", "MatMul", "Gemm", "LSTM", "GRU", "Einsum")
        fa = sum(n.flops for n in a.nodes if n.op_type in heavy)
        fb = sum(n.flops for n in b.nodes if n.op_type in heavy)
        assert fa == fb > 0, name
        assert 0 <= b.flops - a.flops <= 0.05 * a.flops, name


def test_lstm_mixer_flops_match_hand_count():
    # nn.LSTM(16, 32) over 10 steps, batch 1: per step the 4 gates' GEMMs 2*1*4*32*(16+32) = 12,288,
    # both biases 2*4*32 = 256, the cell's element-wise work 15*32 = 480 -> 13,024; x 10 steps.
    g = load_onnx(_bytes("lstm_mixer", False))
    lstm = [n for n in g.nodes if n.op_type == "LSTM"]
    assert len(lstm) == 1 and lstm[0].flops == 130_240
    assert lstm[0].params == 4 * 32 * 16 + 4 * 32 * 32 + 8 * 32  # W, R, both biases
    assert lstm[0].output_shapes[0] == (10, 1, 1, 32)


def test_window_attention_matmul_flops_match_hand_count():
    # 4 windows of 16 tokens, 16 channels: qkv Linear 2*64*16*48, q@k^T 2*4*16*16*16, a@v same,
    # proj 2*64*16*16 (MatMul FLOPs; the biases are separate Adds).
    g = load_onnx(_bytes("window_attention", False))
    mm = sum(n.flops for n in g.nodes if n.op_type == "MatMul")
    assert mm == 2 * 64 * 16 * 48 + 2 * (2 * 4 * 16 * 16 * 16) + 2 * 64 * 16 * 16


@pytest.mark.parametrize("name", ["channel_shuffle", "window_attention", "same_padding"])
def test_onnxruntime_fallback_gives_the_folded_shapes(name, monkeypatch):
    shape = CORPUS[name][1]
    folded = load_onnx(_bytes(name, True), input_shapes={"x": shape})
    monkeypatch.setattr(S, "MAX_FOLD_ROUNDS", 0)
    ran = load_onnx(_bytes(name, True), input_shapes={"x": shape})
    assert folded.meta["shape_path"] == "folded" and ran.meta["shape_path"] == "onnxruntime"
    assert [n.output_shapes for n in ran.nodes] == [n.output_shapes for n in folded.nodes]
    assert ran.flops == folded.flops and ran.fingerprint() == folded.fingerprint()


def test_dynamo_exports_load():
    pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    for name in ("channel_shuffle", "window_attention", "lstm_mixer"):
        factory, shape = CORPUS[name]
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(factory().eval(), (torch.randn(*shape),), dynamo=True)
        buf.write(prog.model_proto.SerializeToString())
        g = load_onnx(buf.getvalue(), name=name)
        assert g.flops > 0 and g.meta["shape_path"] in S.SHAPE_PATHS


# ---------------------------------------------------------------------------- big and old/new opsets
def _residual_chain(blocks: int, opset: int = 17, c: int = 4) -> onnx.ModelProto:
    """``blocks`` x (Conv -> Relu -> Add(skip)): 3 nodes per block."""
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(blocks):
        w = f"w{i}"
        inits.append(numpy_helper.from_array(rng.standard_normal((c, c, 3, 3)).astype(np.float32), w))
        nodes += [helper.make_node("Conv", [x, w], [f"c{i}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
                  helper.make_node("Add", [f"r{i}", x], [f"a{i}"])]
        x = f"a{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 8, 8])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_3000_node_graph_loads_fast():
    m = _residual_chain(1000)
    # CPU time, not wall time: a guard against super-linear work that a loaded machine cannot trip
    t0 = time.process_time()
    g = load_onnx(m)
    dt = time.process_time() - t0
    assert len(g) == 3000 and len(g.edges) == 2 + 999 * 4 and g.meta["shape_path"] == "onnx"
    assert g.flops == 1000 * (2 * 4 * 64 * 4 * 9 + 2 * 4 * 64)
    assert dt < 10.0


def test_opset7_graph_with_attribute_style_ops():
    """Opset 7: Upsample with a scales attribute, Reshape with a shape input, BatchNorm with spatial."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    inits = [numpy_helper.from_array(np.ones(2, np.float32), n) for n in ("s", "b", "m", "v")]
    inits.append(numpy_helper.from_array(np.array([1, -1], np.int64), "shape"))
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"], spatial=1),
             helper.make_node("Upsample", ["bn"], ["up"], scales=[1.0, 1.0, 2.0, 2.0], mode="nearest"),
             helper.make_node("Reshape", ["up", "shape"], ["y"])]
    m = helper.make_model(helper.make_graph(nodes, "old", [x], [helper.make_tensor_value_info("y", 1, None)], inits),
                          opset_imports=[helper.make_opsetid("", 7)])
    m.ir_version = 3
    g = load_onnx(m)
    assert g.meta["opset"] == 7 and [n.output_shapes[0] for n in g.nodes] == [(1, 2, 4, 4), (1, 2, 8, 8), (1, 128)]
    assert g.nodes[0].flops == 2 * 32 and g.nodes[1].flops == 0


def test_opset22_graph_loads():
    m = _residual_chain(3, opset=22)
    g = load_onnx(m)
    assert g.meta["opset"] == 22 and len(g) == 9 and g.meta["shape_path"] == "onnx"


def test_external_data_model_loads_by_path_and_as_weight_free(tmp_path):
    m = _residual_chain(4)
    # a computed Reshape target stored externally too (size_threshold=0): its value sets a shape
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    m.graph.initializer.append(shape)
    m.graph.node.append(helper.make_node("Reshape", ["a3", "shape"], ["flat"]))
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("flat", TensorProto.FLOAT, None))
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data",
                    size_threshold=0)
    stored = onnx.load_model(str(path), load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in stored.graph.initializer)
    g = load_onnx(path)
    assert g.nodes[-1].op_type == "Reshape" and g.nodes[-1].output_shapes == [(1, 256)]
    assert g.nodes[-1].attrs["shape"] == (1, -1)  # read from ext.data, inside the model's directory
    assert g.params == 4 * 4 * 4 * 9
    # weight-free: without the data file, the float weights are never needed; the Reshape target is
    (tmp_path / "ext.data").unlink()
    with pytest.raises(Exception) as e:
        load_onnx(path)
    assert "Reshape" in str(e.value) and "shape" in str(e.value)
