"""One row per kernel of the graph a runtime executes: the work it does, in numbers a cost model reads.

The rows describe the nodes of an *optimised* graph (onnxruntime's, docs/design.md §6): fused
convolutions in the NCHWc layout, fused Gemm/MatMul, layout reorders, contrib activations. Work is
recomputed here from shapes and attributes, not read from ``Node.flops``: data sets exported
before the NCHWc ops had cost specs stored their element count as FLOPs.

Columns (:data:`KERNEL_COLUMNS`): FLOPs, bytes read (activations + parameters), bytes written,
parameter elements, output elements, and the geometry a kernel's speed depends on (kernel
window, group, stride, channels in/out, output spatial size, the GEMM's M, N, K, depthwise and
fused-activation flags), as plain numbers; ``kernel_class`` maps an op type to the coarse class a
cost prior is shared by.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from archcast.graph import NetGraph, Node
from archcast.graph.ops import OpContext, is_shape_only, nchwc_conv_flops, op_cost

FLOAT_BYTES = 4

KERNEL_COLUMNS = (
    "flops", "bytes_in", "bytes_out", "params", "out_elems", "window", "group", "stride", "c_in", "c_out",
    "spatial", "gemm_m", "gemm_n", "gemm_k", "depthwise", "fused_act", "n_inputs", "rank",
)
_COL = {c: i for i, c in enumerate(KERNEL_COLUMNS)}

_CONV = {"Conv", "com.microsoft.nchwc.Conv", "com.microsoft.FusedConv", "ConvTranspose"}
_GEMM = {"Gemm", "com.microsoft.FusedGemm"}
_MATMUL = {"MatMul", "com.microsoft.FusedMatMul"}
_POOL = {"MaxPool", "AveragePool", "com.microsoft.nchwc.MaxPool", "com.microsoft.nchwc.AveragePool",
         "GlobalAveragePool", "GlobalMaxPool", "com.microsoft.nchwc.GlobalAveragePool",
         "com.microsoft.nchwc.GlobalMaxPool"}
_REORDER = {"com.microsoft.nchwc.ReorderInput", "com.microsoft.nchwc.ReorderOutput"}
_RNN = {"LSTM", "GRU", "RNN"}
_NORM = {"LayerNormalization", "BatchNormalization", "InstanceNormalization", "GroupNormalization",
         "com.microsoft.SkipLayerNormalization", "com.microsoft.SkipSimplifiedLayerNormalization",
         "com.microsoft.SimplifiedLayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization"}
_ATTN = {"Attention", "com.microsoft.Attention", "com.microsoft.MultiHeadAttention"}
_MOVE = {"Transpose", "Concat", "Split", "Slice", "Gather", "Pad", "Expand", "Tile", "Resize", "Upsample",
         "com.microsoft.nchwc.Upsample", "DepthToSpace", "SpaceToDepth", "GatherElements", "ScatterND"}


def kernel_class(op_type: str) -> str:
    """The coarse class of a kernel (``conv``, ``gemm``, ``matmul``, ``pool``, ``reorder``,
    ``rnn``, ``norm``, ``attention``, ``move``, ``view`` for shape-only ops, else ``elementwise``)."""
    for cls, ops in (("conv", _CONV), ("gemm", _GEMM), ("matmul", _MATMUL), ("pool", _POOL),
                     ("reorder", _REORDER), ("rnn", _RNN), ("norm", _NORM), ("attention", _ATTN),
                     ("move", _MOVE)):
        if op_type in ops:
            return cls
    return "view" if is_shape_only(op_type) else "elementwise"


def _numel(s: Sequence[int]) -> int:
    return math.prod(int(d) for d in s) if s else 1


def _int(v: Any, default: int = 1) -> int:
    if isinstance(v, tuple):
        v = v[0] if v else default
    try:
        return max(int(v), 0)
    except (TypeError, ValueError):
        return default


def conv_window(node: Node) -> int:
    """A convolution's window size: ``kernel_shape``, else read off the parameter count (onnxruntime
    folds a BatchNormalization into a 1x1 depthwise NCHWc conv that carries no ``kernel_shape``)."""
    k = node.attrs.get("kernel_shape")
    if isinstance(k, tuple) and k:
        return _numel(k)
    x = node.input_shapes[0] if node.input_shapes else ()
    y = node.output_shapes[0] if node.output_shapes else ()
    if len(x) < 2 or len(y) < 2:
        return 1
    group = max(_int(node.attrs.get("group", 1)), 1)
    per_out = int(y[1]) * max(int(x[1]) // group, 1)
    return max(1, round((int(node.params) - int(y[1])) / max(per_out, 1)))


def _nchwc_conv_flops(node: Node) -> int:
    # the IR lists activation inputs only: a second one is the fused residual add
    return nchwc_conv_flops(node.input_shapes[0], node.output_shapes[0], max(_int(node.attrs.get("group", 1)), 1),
                            conv_window(node), "activation" in node.attrs, len(node.input_shapes) > 1)


def kernel_flops(node: Node) -> int:
    """FLOPs of one kernel, recomputed from its shapes (the NCHWc ops count as their plain kin)."""
    op = node.op_type
    if op == "com.microsoft.nchwc.Conv":
        try:
            return _nchwc_conv_flops(node)
        except (IndexError, TypeError, ValueError):
            return int(node.flops)
    plain = {"com.microsoft.nchwc.MaxPool": "MaxPool",
             "com.microsoft.nchwc.AveragePool": "AveragePool",
             "com.microsoft.nchwc.GlobalAveragePool": "GlobalAveragePool",
             "com.microsoft.nchwc.GlobalMaxPool": "GlobalMaxPool",
             "com.microsoft.nchwc.Upsample": "Upsample"}.get(op)
    if op in _REORDER:
        return 0
    if plain is None:
        return int(node.flops)
    try:
        ctx = OpContext.from_shapes(node.attrs, node.input_shapes, [], node.output_shapes)
        return int(op_cost(plain, ctx).flops)
    except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError):
        return int(node.flops)


def kernel_row(node: Node) -> np.ndarray:
    """One row of :data:`KERNEL_COLUMNS` for ``node``."""
    r = np.zeros(len(KERNEL_COLUMNS), dtype=np.float64)
    op = node.op_type
    ins = [s for s in node.input_shapes if s is not None]
    out = node.output_shapes[0] if node.output_shapes else ()
    out_elems = sum(_numel(s) for s in node.output_shapes)
    r[_COL["flops"]] = kernel_flops(node)
    r[_COL["bytes_in"]] = FLOAT_BYTES * (sum(_numel(s) for s in ins) + int(node.params))
    r[_COL["bytes_out"]] = FLOAT_BYTES * out_elems
    r[_COL["params"]] = int(node.params)
    r[_COL["out_elems"]] = out_elems
    r[_COL["n_inputs"]] = len(ins)
    r[_COL["rank"]] = len(out)
    cls = kernel_class(op)
    if cls in ("conv", "pool"):
        k = node.attrs.get("kernel_shape")
        if cls == "conv":
            window = conv_window(node)
        else:
            window = _numel(k) if isinstance(k, tuple) else (_numel(ins[0][2:]) if ins else 1)
        group = _int(node.attrs.get("group", 1))
        cin = int(ins[0][1]) if ins and len(ins[0]) > 1 else 0
        cout = int(out[1]) if len(out) > 1 else 0
        r[_COL["window"]] = window
        r[_COL["group"]] = group
        r[_COL["stride"]] = _int(node.attrs.get("strides", 1))
        r[_COL["c_in"]], r[_COL["c_out"]] = cin, cout
        r[_COL["spatial"]] = _numel(out[2:]) if len(out) > 2 else 1
        r[_COL["depthwise"]] = float(cls == "conv" and group > 1 and group >= cin > 0)
        r[_COL["fused_act"]] = float("activation" in node.attrs)
    elif cls in ("gemm", "matmul") and ins:
        a = ins[0]
        kdim = (a[0] if _int(node.attrs.get("transA", 0), 0) and len(a) == 2 else a[-1]) if a else 1
        n = out[-1] if out else 1
        r[_COL["gemm_k"]] = kdim
        r[_COL["gemm_n"]] = n
        r[_COL["gemm_m"]] = out_elems / max(n, 1)
        r[_COL["fused_act"]] = float("activation" in node.attrs)
    elif cls == "rnn":
        r[_COL["gemm_k"]] = int(ins[0][-1]) if ins and ins[0] else 0
        r[_COL["gemm_n"]] = _int(node.attrs.get("hidden_size", 0), 0)
        r[_COL["gemm_m"]] = int(ins[0][0]) if ins and ins[0] else 0  # sequence length
    return r


def kernel_table(graph: NetGraph) -> tuple[list[str], list[str], np.ndarray]:
    """``(node names, op types, [K, F] rows)`` for every node of ``graph`` (an optimised graph)."""
    names = [n.name for n in graph.nodes]
    ops = [n.op_type for n in graph.nodes]
    rows = np.stack([kernel_row(n) for n in graph.nodes]) if graph.nodes else np.zeros((0, len(KERNEL_COLUMNS)))
    return names, ops, rows


__all__ = ["FLOAT_BYTES", "KERNEL_COLUMNS", "conv_window", "kernel_class", "kernel_flops", "kernel_row", "kernel_table"]
