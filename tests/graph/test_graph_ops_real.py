"""Cost specs for ops real networks contain: RNNs, attention, Einsum, fused ops, control flow,
shape-only ops, and refusals of impossible attributes (golden numbers by hand)."""

from __future__ import annotations

import pytest

from archcast.errors import GraphValidationError
from archcast.graph.ops import (ACTIVATION, CONFIG, PARAM, SHAPE_ONLY_OPS, OpContext, cost_unknown, is_generic,
                                is_shape_only, op_cost, op_cost_from_shapes)


def _ctx(attrs, ins, kinds, outs):
    return OpContext(attrs, tuple(ins), tuple(kinds), tuple(outs))


@pytest.mark.parametrize("op, gates, cell", [("LSTM", 4, 15), ("GRU", 3, 12), ("RNN", 1, 1)])
def test_recurrent_flops_by_hand(op, gates, cell):
    seq, batch, inp, hid = 7, 2, 16, 32
    c = _ctx({"hidden_size": hid}, [(seq, batch, inp), (1, gates * hid, inp), (1, gates * hid, hid), (1, 2 * gates * hid)],
             [ACTIVATION, PARAM, PARAM, PARAM], [(seq, 1, batch, hid)])
    per_step = 2 * batch * gates * hid * (inp + hid) + cell * batch * hid + 2 * gates * hid * batch
    cost = op_cost(op, c)
    assert cost.flops == seq * per_step
    assert cost.params == gates * hid * inp + gates * hid * hid + 2 * gates * hid


def test_bidirectional_batch_first_lstm():
    c = _ctx({"hidden_size": 8, "layout": 1, "direction": "bidirectional"},
             [(3, 5, 4), (2, 32, 4), (2, 32, 8)], [ACTIVATION, PARAM, PARAM], [(3, 5, 2, 8)])
    assert op_cost("LSTM", c).flops == 5 * 2 * (2 * 3 * 4 * 8 * 12 + 15 * 3 * 8)  # seq 5, batch 3, 2 directions


def test_opset23_attention_4d_and_3d():
    b, h, s, d = 2, 4, 10, 8
    four = _ctx({}, [(b, h, s, d)] * 3, [ACTIVATION] * 3, [(b, h, s, d)])
    scores = b * h * s * s
    assert op_cost("Attention", four).flops == 2 * scores * d + 5 * scores + 2 * scores * d
    three = _ctx({"q_num_heads": h, "kv_num_heads": h}, [(b, s, h * d)] * 3, [ACTIVATION] * 3, [(b, s, h * d)])
    assert op_cost("Attention", three).flops == op_cost("Attention", four).flops


def test_com_microsoft_attention_includes_the_qkv_projection():
    b, s, hid, heads = 1, 16, 64, 4
    c = _ctx({"num_heads": heads}, [(b, s, hid), (hid, 3 * hid), (3 * hid,)], [ACTIVATION, PARAM, PARAM], [(b, s, hid)])
    scores = b * heads * s * s
    proj = 2 * b * s * hid * 3 * hid + b * s * 3 * hid
    assert op_cost("com.microsoft.Attention", c).flops == proj + 4 * scores * (hid // heads) + 5 * scores
    assert not is_generic("com.microsoft.MultiHeadAttention") and not is_generic("com.microsoft.SkipLayerNormalization")


@pytest.mark.parametrize("eq, shapes, out, flops", [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], (2, 3, 5), 2 * 2 * 3 * 4 * 5),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)], (2, 3, 5), 2 * 2 * 3 * 4 * 5),
    ("ij->ji", [(3, 4)], (4, 3), 0),
    ("ii->", [(3, 3)], (), 3),
    ("i,j->ij", [(3,), (4,)], (3, 4), 12),
])
def test_einsum(eq, shapes, out, flops):
    c = _ctx({"equation": eq}, shapes, [ACTIVATION] * len(shapes), [out])
    assert op_cost("Einsum", c).flops == flops


@pytest.mark.parametrize("eq", ["a...b...,c->", "a..b->", "ab->a->b", "é->", "a" * 300])
def test_malformed_einsum_falls_back_to_the_generic_cost(eq):
    c = _ctx({"equation": eq}, [(2, 3), (3,)], [ACTIVATION, ACTIVATION], [(2,)])
    assert op_cost("Einsum", c).flops == 2  # generic: output elements


def test_resize_convtranspose_and_reductions():
    assert op_cost_from_shapes("Resize", {"mode": "linear"}, [(1, 2, 4, 4)], [], [(1, 2, 8, 8)]).flops == 2 * 4 * 128
    ct = op_cost_from_shapes("ConvTranspose", {"kernel_shape": (2, 2)}, [(1, 4, 4, 4)], [(4, 2, 2, 2)], [(1, 2, 8, 8)])
    assert ct.flops == 2 * 1 * 4 * 16 * 2 * 4
    assert op_cost_from_shapes("ReduceLogSumExp", {}, [(2, 8)], [], [(2, 1)]).flops == 2 * 16 + 2
    assert op_cost_from_shapes("ArgMax", {}, [(2, 8)], [], [(2, 1)]).flops == 16


def test_control_flow_is_known_but_of_unknown_cost():
    for op in ("If", "Loop", "Scan"):
        assert not is_generic(op) and cost_unknown(op)
        assert op_cost_from_shapes(op, {}, [(1,)], [], [(1, 4)]).flops == 0
    assert cost_unknown("NoSuchOp") and not cost_unknown("Conv")


def test_shape_only_ops_are_zero_cost_and_known():
    for op in SHAPE_ONLY_OPS:
        assert is_shape_only(op) and not is_generic(op) and not cost_unknown(op)
        assert op_cost_from_shapes(op, {}, [(4, 4)], [], [(4, 4)]).flops == 0, op
    assert not is_shape_only("Conv")


@pytest.mark.parametrize("op, attrs", [
    ("Conv", {"group": float("inf")}), ("Conv", {"group": 0}), ("ConvTranspose", {"group": -2}),
    ("Conv", {"kernel_shape": ("a", 3)}), ("MaxPool", {"kernel_shape": (2 ** 62,) * 3}),
    ("LSTM", {"hidden_size": -1}),
])
def test_impossible_attributes_are_graph_validation_errors(op, attrs):
    shapes = {"Conv": ([(1, 2, 4, 4)], [(2, 2, 1, 1)], [(1, 2, 4, 4)]),
              "ConvTranspose": ([(1, 2, 4, 4)], [(2, 2, 1, 1)], [(1, 2, 4, 4)]),
              "MaxPool": ([(1, 2, 4, 4)], [], [(1, 2, 4, 4)]),
              "LSTM": ([(1, 1, 4)], [(1, 16, 4), (1, 16, 4)], [(1, 1, 1, 4)])}[op]
    with pytest.raises(GraphValidationError) as e:
        op_cost_from_shapes(op, attrs, *shapes)
    assert op in str(e.value) and "\n" not in str(e.value)


def test_config_inputs_of_recurrent_ops():
    c = _ctx({"hidden_size": 4}, [(2, 1, 4), (1, 16, 4), (1, 16, 4), None, (1,)],
             [ACTIVATION, PARAM, PARAM, "absent", CONFIG], [(2, 1, 1, 4)])
    assert op_cost("LSTM", c).params == 2 * 16 * 4


def test_nchwc_kernels_count_like_their_plain_kin():
    """onnxruntime's optimised CPU graph (NCHWc convs, pools, reorders) is costed, not generic."""
    from archcast.graph.ops import op_cost_from_shapes

    x, y = (1, 64, 14, 14), (1, 64, 14, 14)
    plain = op_cost_from_shapes("Conv", {"kernel_shape": (3, 3)}, [x], [(64, 64, 3, 3), (64,)], [y]).flops
    fused = op_cost_from_shapes("com.microsoft.nchwc.Conv", {"kernel_shape": (3, 3), "activation": "Relu"},
                                [x], [(64, 64, 3, 3), (64,)], [y]).flops
    assert fused == plain + 64 * 14 * 14
    # a BatchNormalization folded into a 1x1 depthwise conv carries no kernel_shape: the weight says 1x1
    bn = op_cost_from_shapes("com.microsoft.nchwc.Conv", {"group": 64}, [x], [(64, 1, 1, 1), (64,)], [y]).flops
    assert bn == 2 * 64 * 14 * 14 + 64 * 14 * 14
    for op in ("com.microsoft.nchwc.Conv", "com.microsoft.nchwc.MaxPool", "com.microsoft.nchwc.ReorderInput",
               "com.microsoft.nchwc.GlobalAveragePool"):
        assert not is_generic(op)
