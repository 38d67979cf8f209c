"""Golden FLOPs / params / memory for operator specs and for small hand-computed models."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.frontends.onnx import load_onnx
from archcast.graph.ops import (
    GENERIC, OP_SPECS, OpContext, is_generic, known_op_types, op_cost, op_cost_from_shapes, spec_for,
)

REQUIRED = """Conv ConvTranspose Gemm MatMul BatchNormalization Relu Clip Sigmoid HardSigmoid HardSwish Tanh
Gelu Erf Softmax Add Mul Sub Div Pow Sqrt MaxPool AveragePool GlobalAveragePool GlobalMaxPool ReduceMean
Concat Flatten Reshape Transpose Split Slice Gather Squeeze Unsqueeze Pad Resize LayerNormalization
InstanceNormalization Dropout Identity Shape Constant Expand Sin Cos Exp Log Where Einsum""".split()


def test_required_op_types_have_specs():
    assert set(REQUIRED) <= set(known_op_types())
    assert known_op_types() == sorted(known_op_types())
    assert not any(spec_for(op).generic for op in REQUIRED)
    assert is_generic("DFT") and spec_for("DFT") is GENERIC


def test_conv_3_to_16_k3_pad1_bias():
    # MACs: 16*32*32 outputs x 27 taps -> 2 FLOPs each; the bias adds 1 FLOP per output element.
    c = op_cost_from_shapes("Conv", {"kernel_shape": (3, 3), "pads": (1, 1, 1, 1)},
                            [(1, 3, 32, 32)], [(16, 3, 3, 3), (16,)], [(1, 16, 32, 32)])
    assert c.params == 448
    assert c.flops == 2 * 16 * 32 * 32 * 27 + 16 * 32 * 32 == 901_120
    assert c.memory_bytes == 4 * (16 * 32 * 32 + 448)


def test_conv_without_bias_and_depthwise():
    c = op_cost_from_shapes("Conv", {"kernel_shape": (3, 3)}, [(1, 3, 32, 32)], [(16, 3, 3, 3)], [(1, 16, 30, 30)])
    assert (c.flops, c.params) == (2 * 16 * 30 * 30 * 27, 432)
    dw = op_cost_from_shapes("Conv", {"kernel_shape": (3, 3), "group": 32, "pads": (1, 1, 1, 1)},
                             [(2, 32, 16, 16)], [(32, 1, 3, 3)], [(2, 32, 16, 16)])
    assert dw.params == 32 * 9
    assert dw.flops == 2 * (2 * 32 * 16 * 16) * 9  # each output reads one channel: 9 taps


def test_conv_transpose():
    # 2x upsampling, 8 -> 4 channels, k2 s2: every input element meets 4 out-channels x 4 taps.
    c = op_cost_from_shapes("ConvTranspose", {"kernel_shape": (2, 2), "strides": (2, 2)},
                            [(1, 8, 5, 5)], [(8, 4, 2, 2), (4,)], [(1, 4, 10, 10)])
    assert c.params == 8 * 4 * 4 + 4
    assert c.flops == 2 * 8 * 25 * 4 * 4 + 4 * 100


def test_gemm_512_to_10():
    c = op_cost_from_shapes("Gemm", {"transB": 1}, [(1, 512)], [(10, 512), (10,)], [(1, 10)])
    assert (c.flops, c.params, c.memory_bytes) == (2 * 512 * 10 + 10, 5130, 4 * (10 + 5130))
    t = op_cost_from_shapes("Gemm", {"transA": 1}, [(512, 3)], [(512, 10)], [(3, 10)])
    assert t.flops == 2 * 3 * 10 * 512


def test_matmul_batched_and_einsum():
    assert op_cost_from_shapes("MatMul", {}, [(2, 4, 8, 16), (2, 4, 16, 8)], [], [(2, 4, 8, 8)]).flops == 2 * 512 * 16
    e = op_cost_from_shapes("Einsum", {"equation": "bhqd,bhkd->bhqk"}, [(2, 4, 8, 16), (2, 4, 8, 16)], [],
                            [(2, 4, 8, 8)])
    assert e.flops == 2 * 2 * 4 * 8 * 8 * 16
    ell = op_cost_from_shapes("Einsum", {"equation": "...ij,...jk->...ik"}, [(3, 5, 6), (3, 6, 7)], [], [(3, 5, 7)])
    assert ell.flops == 2 * 3 * 5 * 6 * 7
    assert op_cost_from_shapes("Einsum", {"equation": "ij->ji"}, [(3, 4)], [], [(4, 3)]).flops == 0
    assert op_cost_from_shapes("Einsum", {"equation": "ij->"}, [(3, 4)], [], [()]).flops == 12  # a sum
    assert op_cost_from_shapes("Einsum", {"equation": "ii"}, [(5, 5)], [], [()]).flops == 5  # a trace


def test_batchnorm_params_and_flops():
    c = op_cost_from_shapes("BatchNormalization", {"epsilon": 1e-5}, [(2, 16, 8, 8)], [(16,)] * 4, [(2, 16, 8, 8)])
    assert c.params == 4 * 16
    assert c.flops == 2 * 2 * 16 * 64


@pytest.mark.parametrize("op,attrs,per_elem", [
    ("Relu", {}, 1), ("Sqrt", {}, 1), ("Erf", {}, 1), ("Clip", {}, 2), ("Sigmoid", {}, 3),
    ("HardSigmoid", {}, 4), ("HardSwish", {}, 5), ("Gelu", {}, 5), ("Gelu", {"approximate": "tanh"}, 9),
    ("Softmax", {"axis": -1}, 5), ("Add", {}, 1), ("Where", {}, 1), ("Reshape", {}, 0), ("Transpose", {}, 0),
    ("Dropout", {}, 0), ("Softsign", {}, 1), ("DFT", {}, 1),  # DFT: the generic fallback, 1 per output element
])
def test_elementwise_per_element(op, attrs, per_elem):
    c = op_cost_from_shapes(op, attrs, [(2, 3, 4)], [], [(2, 3, 4)])
    assert c.flops == per_elem * 24
    assert c.memory_bytes == 4 * 24


def test_pooling_reductions_norms_resize():
    assert op_cost_from_shapes("MaxPool", {"kernel_shape": (3, 3)}, [(1, 4, 8, 8)], [], [(1, 4, 4, 4)]).flops == 64 * 9
    assert op_cost_from_shapes("GlobalAveragePool", {}, [(1, 4, 8, 8)], [], [(1, 4, 1, 1)]).flops == 256 + 4
    assert op_cost_from_shapes("GlobalMaxPool", {}, [(1, 4, 8, 8)], [], [(1, 4, 1, 1)]).flops == 256
    assert op_cost_from_shapes("ReduceMean", {"axes": (-1,)}, [(2, 10)], [], [(2, 1)]).flops == 20 + 2
    ln = op_cost_from_shapes("LayerNormalization", {"axis": -1}, [(2, 5, 8)], [(8,), (8,)], [(2, 5, 8)])
    assert (ln.flops, ln.params) == (7 * 80, 16)
    inorm = op_cost_from_shapes("InstanceNormalization", {}, [(1, 3, 4, 4)], [(3,), (3,)], [(1, 3, 4, 4)])
    assert (inorm.flops, inorm.params) == (7 * 48, 6)
    assert op_cost_from_shapes("Resize", {"mode": "nearest"}, [(1, 2, 4, 4)], [], [(1, 2, 8, 8)]).flops == 0
    assert op_cost_from_shapes("Resize", {"mode": "linear"}, [(1, 2, 4, 4)], [], [(1, 2, 8, 8)]).flops == 2 * 4 * 128


def test_context_roles_and_itemsize():
    # fp16 output, one config input (Clip bound): only outputs count towards memory.
    ctx = OpContext({}, ((4, 4), (), None), ("activation", "config", "absent"), ((4, 4),), (4, 2, 4), (2,))
    c = op_cost("Clip", ctx)
    assert (c.flops, c.params, c.memory_bytes) == (32, 0, 32)
    with pytest.raises(ValueError, match="'weights'"):
        OpContext({}, ((1,),), ("weights",), ((1,),))
    assert spec_for("Clip").is_config(1, 1) and not spec_for("Conv").is_config(1, 1)
    assert spec_for("Mul").is_config(1, 1) and not spec_for("Mul").is_config(1, 8)
    assert len(OP_SPECS) == len(known_op_types())


# ---------------------------------------------------------------------------- whole models
def _conv_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in [("w", (16, 3, 3, 3)), ("b", (16,)), ("fw", (10, 16)), ("fb", (10,))]]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_hand_built_onnx_model_totals():
    g = load_onnx(_conv_model())
    conv = 2 * 16 * 32 * 32 * 27 + 16 * 32 * 32
    relu = 16 * 32 * 32
    gap = 16 * 32 * 32 + 16
    gemm = 2 * 16 * 10 + 10
    assert [n.flops for n in g.nodes] == [conv, relu, gap, 0, gemm]
    assert [n.params for n in g.nodes] == [448, 0, 0, 0, 170]
    assert g.flops == conv + relu + gap + gemm and g.params == 618
    assert g.memory_bytes == 4 * (16 * 1024 * 2 + 16 + 16 + 10 + 618)


def test_torch_mlp_totals():
    torch = pytest.importorskip("torch")
    from archcast.frontends.torch import load_torch

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(), torch.nn.Linear(30, 5))
    g = load_torch(mlp, torch.randn(4, 20))
    assert [n.op_type for n in g.nodes] == ["Gemm", "Relu", "Gemm"]
    # Gemm: 2*M*N*K + M*N (bias); Relu: 1 per element.
    assert g.flops == (2 * 4 * 30 * 20 + 4 * 30) + 4 * 30 + (2 * 4 * 5 * 30 + 4 * 5) == 6260
    assert g.params == sum(p.numel() for p in mlp.parameters()) == 785


def test_torch_cnn_totals_with_fused_batchnorm():
    torch = pytest.importorskip("torch")
    from torch import nn

    from archcast.frontends.torch import load_torch

    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )
    g = load_torch(net, torch.randn(1, 3, 16, 16))
    # Eval-mode export folds each BatchNorm into the preceding Conv (which gains a bias).
    assert [n.op_type for n in g.nodes] == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "GlobalAveragePool",
                                            "Flatten", "Gemm"]
    expected_flops = [
        2 * (8 * 16 * 16) * 27 + 8 * 16 * 16,   # conv1 + bias
        8 * 16 * 16,                            # relu
        (8 * 8 * 8) * 4,                        # 2x2 max pool
        2 * (16 * 8 * 8) * 72 + 16 * 8 * 8,     # conv2 + fused-BN bias
        16 * 8 * 8,                             # relu
        16 * 8 * 8 + 16,                        # global average: sums + divides
        0,                                      # flatten
        2 * 16 * 10 + 10,                       # linear
    ]
    assert [n.flops for n in g.nodes] == expected_flops
    assert g.flops == 267_610
    assert [n.params for n in g.nodes] == [8 * 27 + 8, 0, 0, 16 * 72 + 16, 0, 0, 0, 170]
    assert g.params == 1562
