"""Budgeted constant folding of ONNX shape arithmetic, in numpy (no native onnx code, no I/O).

:func:`fold_node` computes the outputs of one ONNX operator whose inputs are all known constants,
or returns None when it will not: the op is not in :data:`FOLDERS`, an input is missing, or an
output would hold more than ``budget`` elements. The size of every output is checked *before*
anything is allocated (``Range 0..2^26``, ``Expand`` to ``[2^30]`` or ``ConstantOfShape`` of a huge
shape are refused, not materialised).

Only the ops exporters use for shape arithmetic are covered (``Shape`` → ``Gather`` → ``Concat`` →
``Reshape``, ``Slice`` ends computed with ``Div``/``Mul``, ``Range``, ``ConstantOfShape``...);
anything else is left for the next stage of shape recovery (see :mod:`archcast.frontends.shapes`).
Tensor attributes (``ConstantOfShape``'s ``value``) are read only when they carry their data inline:
an external-data attribute is never opened here.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

Array = np.ndarray
FOLD_BUDGET = 4096  # elements per folded tensor: shape tensors are tiny, weights are not folded


class _Refuse(Exception):
    """Internal: this op is not folded (too big, unsupported variant, bad values)."""


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        d = int(d)
        if d < 0:
            raise _Refuse(f"negative dim {d}")
        n *= d
    return n


def _check(shape: Sequence[int], budget: int) -> tuple[int, ...]:
    if _numel(shape) > budget:
        raise _Refuse("too big")
    return tuple(int(d) for d in shape)


def _ints(a: Array) -> list[int]:
    if a.dtype.kind not in "iub":
        raise _Refuse("not integer")
    return [int(v) for v in a.reshape(-1)]


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise _Refuse(f"axis {axis} out of range")
    return axis % rank if rank else 0


# ---------------------------------------------------------------------------- ops
def _shape(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    dims = ins[0].shape
    start, end = int(at.get("start", 0)), at.get("end")
    return [np.array(dims[start:None if end is None else int(end)], dtype=np.int64)]


def _broadcast(ins: list[Array], budget: int) -> tuple[int, ...]:
    try:
        shape = np.broadcast_shapes(*(a.shape for a in ins))
    except ValueError:
        raise _Refuse("shapes do not broadcast") from None
    return _check(shape, budget)


def _elementwise(fn: Callable[..., Array]) -> Callable[..., list[Array]]:
    def run(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
        _broadcast(ins, budget)
        if any(a.dtype.kind not in "iufb" for a in ins):
            raise _Refuse("non-numeric")
        with np.errstate(all="ignore"):
            out = fn(*ins)
        return [np.asarray(out)]
    return run


def _div(a: Array, b: Array) -> Array:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if (b == 0).any():
            raise _Refuse("integer division by zero")
        q = np.abs(a) // np.abs(b)
        return (np.sign(a) * np.sign(b) * q).astype(np.result_type(a, b))  # C-like truncation
    return a / b


def _mod(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    a, b = ins
    _broadcast(ins, budget)
    if a.dtype.kind in "iu" and (b == 0).any():
        raise _Refuse("modulo by zero")
    with np.errstate(all="ignore"):
        return [np.fmod(a, b) if int(at.get("fmod", 0)) else np.mod(a, b)]


def _variadic(fn: Callable[[Array, Array], Array]) -> Callable[..., list[Array]]:
    def run(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
        _broadcast(ins, budget)
        out = ins[0]
        for a in ins[1:]:
            out = fn(out, a)
        return [np.asarray(out)]
    return run


def _unary(fn: Callable[[Array], Array]) -> Callable[..., list[Array]]:
    def run(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
        if ins[0].dtype.kind not in "iufb":
            raise _Refuse("non-numeric")
        with np.errstate(all="ignore"):
            return [np.asarray(fn(ins[0])).astype(ins[0].dtype, copy=False)]
    return run


def _np_dtype(to: int) -> np.dtype:
    from archcast.frontends.onnx_proto import np_dtype  # onnx's map; onnx itself only for ml_dtypes types

    try:
        dt = np_dtype(int(to))
    except (KeyError, TypeError, ValueError):
        raise _Refuse(f"unknown data type {to}") from None
    if dt.kind not in "iufb":
        raise _Refuse("non-numeric cast")
    return dt


def _cast(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    if ins[0].dtype.kind not in "iufb":
        raise _Refuse("non-numeric")
    dt = _np_dtype(at.get("to", 1))
    with np.errstate(all="ignore"):
        if dt.kind in "iu" and ins[0].dtype.kind == "f" and not np.isfinite(ins[0]).all():
            raise _Refuse("non-finite to integer")
        return [ins[0].astype(dt)]


def _cast_like(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    return [ins[0].astype(ins[1].dtype)]


def _gather(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    data, idx = ins
    if data.ndim == 0:
        raise _Refuse("gather from a scalar")
    ax = _axis(int(at.get("axis", 0)), data.ndim)
    _check(data.shape[:ax] + idx.shape + data.shape[ax + 1:], budget)
    i = np.asarray(_ints(idx), dtype=np.int64).reshape(idx.shape)
    n = data.shape[ax]
    if ((i < -n) | (i >= n)).any():
        raise _Refuse("index out of range")
    return [np.take(data, i, axis=ax)]


def _concat(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    if sum(a.size for a in ins) > budget or any(a.ndim == 0 for a in ins):
        raise _Refuse("too big or scalar")
    ax = _axis(int(at.get("axis", 0)), ins[0].ndim)
    try:
        return [np.concatenate(ins, axis=ax)]
    except ValueError:
        raise _Refuse("shapes do not concatenate") from None


def _axes_of(ins: list[Array], at: dict[str, Any], opset: int, since: int, pos: int = 1) -> list[int] | None:
    if opset >= since:
        return _ints(ins[pos]) if len(ins) > pos and ins[pos] is not None else None
    axes = at.get("axes")
    return None if axes is None else [int(a) for a in axes]


def _unsqueeze(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    axes = _axes_of(ins, at, opset, 13)
    if not axes:
        raise _Refuse("no axes")
    rank = ins[0].ndim + len(axes)
    axes = sorted(_axis(a, rank) for a in axes)
    if len(set(axes)) != len(axes):
        raise _Refuse("repeated axes")
    out = ins[0]
    for a in axes:
        out = np.expand_dims(out, a)
    return [out]


def _squeeze(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    axes = _axes_of(ins, at, opset, 13)
    x = ins[0]
    if axes is None:
        return [np.squeeze(x)]
    axes = [_axis(a, x.ndim) for a in axes]
    if any(x.shape[a] != 1 for a in axes):
        raise _Refuse("squeezing a dim that is not 1")
    return [np.squeeze(x, axis=tuple(axes))]


def _slice(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    x = ins[0]
    if opset < 10:
        starts, ends = list(at.get("starts", ())), list(at.get("ends", ()))
        axes = list(at.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = _ints(ins[1]), _ints(ins[2])
        axes = _ints(ins[3]) if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = _ints(ins[4]) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    if not (len(starts) == len(ends) == len(axes) == len(steps)) or x.ndim == 0:
        raise _Refuse("inconsistent slice parameters")
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise _Refuse("zero step")
        clip = 2 ** 62  # INT64_MAX style "to the end" markers stay valid Python slice bounds
        index[_axis(int(a), x.ndim)] = slice(max(min(int(s), clip), -clip), max(min(int(e), clip), -clip), int(st))
    return [x[tuple(index)]]


def _reshape_target(x: Array, target: list[int], allowzero: bool) -> tuple[int, ...]:
    dims = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= x.ndim:
                raise _Refuse("0 copies a dim that does not exist")
            d = x.shape[i]
        dims.append(d)
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise _Refuse("bad reshape target")
    if -1 in dims:
        rest = _numel([d for d in dims if d != -1])
        if rest == 0 or x.size % rest:
            raise _Refuse("reshape sizes do not divide")
        dims[dims.index(-1)] = x.size // rest
    if _numel(dims) != x.size:
        raise _Refuse("reshape changes the element count")
    return tuple(dims)


def _reshape(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    target = _ints(ins[1]) if opset >= 5 else [int(d) for d in at.get("shape", ())]
    return [ins[0].reshape(_reshape_target(ins[0], target, bool(at.get("allowzero", 0))))]


def _flatten(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    x = ins[0]
    ax = int(at.get("axis", 1))
    ax = ax + x.ndim if ax < 0 else ax
    if not 0 <= ax <= x.ndim:
        raise _Refuse("bad axis")
    return [x.reshape(_numel(x.shape[:ax]), _numel(x.shape[ax:]))]


def _transpose(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    perm = at.get("perm")
    if perm is not None and sorted(int(p) for p in perm) != list(range(ins[0].ndim)):
        raise _Refuse("bad perm")
    return [np.transpose(ins[0], None if perm is None else [int(p) for p in perm])]


def _expand(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    target = _ints(ins[1])
    try:
        shape = np.broadcast_shapes(ins[0].shape, tuple(target))
    except ValueError:
        raise _Refuse("shapes do not broadcast") from None
    return [np.broadcast_to(ins[0], _check(shape, budget)).copy()]


def _tile(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    reps = _ints(ins[1])
    if len(reps) != ins[0].ndim or any(r < 0 for r in reps):
        raise _Refuse("bad repeats")
    _check([d * r for d, r in zip(ins[0].shape, reps)], budget)
    return [np.tile(ins[0], reps)]


def _constant_of_shape(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    shape = _check(_ints(ins[0]), budget)
    value = at.get("value")
    fill = np.zeros(1, np.float32) if value is None else value
    if not isinstance(fill, np.ndarray) or fill.size != 1:
        raise _Refuse("value attribute unreadable")
    return [np.full(shape, fill.reshape(-1)[0], dtype=fill.dtype)]


def _range(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    start, limit, delta = (a.reshape(-1)[0] if a.size == 1 else None for a in ins)
    if start is None or limit is None or delta is None or delta == 0:
        raise _Refuse("bad range")
    if not all(np.isfinite(v) for v in (start, limit, delta)):
        raise _Refuse("non-finite range")
    n = max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)
    _check((n,), budget)
    dt = np.result_type(ins[0].dtype, ins[1].dtype, ins[2].dtype)
    return [(start + np.arange(n, dtype=np.float64 if dt.kind == "f" else np.int64) * delta).astype(dt)]


def _reduce(fn: Callable[..., Array], since: int) -> Callable[..., list[Array]]:
    def run(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
        x = ins[0]
        axes = _axes_of(ins, at, opset, since)
        keep = bool(int(at.get("keepdims", 1)))
        if axes is None or not axes:
            if int(at.get("noop_with_empty_axes", 0)) and axes is not None:
                return [x]
            axes = list(range(x.ndim))
        ax = tuple(sorted({_axis(a, x.ndim) for a in axes})) if x.ndim else None
        with np.errstate(all="ignore"):
            return [np.asarray(fn(x, axis=ax, keepdims=keep))]
    return run


def _clip(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    x = ins[0]
    if opset < 11:
        lo, hi = at.get("min"), at.get("max")
    else:
        lo = ins[1].reshape(-1)[0] if len(ins) > 1 and ins[1] is not None and ins[1].size == 1 else None
        hi = ins[2].reshape(-1)[0] if len(ins) > 2 and ins[2] is not None and ins[2].size == 1 else None
    out = x
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    return [np.asarray(out).astype(x.dtype, copy=False)]


def _split(ins: list[Array], at: dict[str, Any], opset: int, budget: int, n_out: int) -> list[Array]:
    x = ins[0]
    if x.ndim == 0:
        raise _Refuse("split of a scalar")
    ax = _axis(int(at.get("axis", 0)), x.ndim)
    parts = (_ints(ins[1]) if len(ins) > 1 and ins[1] is not None else None) if opset >= 13 else \
        ([int(s) for s in at["split"]] if "split" in at else None)
    if parts is None:
        k = int(at.get("num_outputs", n_out))
        if k <= 0:
            raise _Refuse("bad split count")
        size = -(-x.shape[ax] // k)
        parts = [min(size, max(x.shape[ax] - size * i, 0)) for i in range(k)]
    if len(parts) != n_out or sum(parts) != x.shape[ax] or any(p < 0 for p in parts):
        raise _Refuse("split sizes do not add up")
    return list(np.split(x, np.cumsum(parts)[:-1], axis=ax))


def _where(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    _broadcast(ins, budget)
    return [np.where(ins[0].astype(bool), ins[1], ins[2])]


def _identity(ins: list[Array], at: dict[str, Any], opset: int, budget: int) -> list[Array]:
    return [ins[0]]


Folder = Callable[[list[Array], dict[str, Any], int, int], list[Array]]
FOLDERS: dict[str, Folder] = {
    "Identity": _identity, "Shape": _shape, "Cast": _cast, "CastLike": _cast_like, "Gather": _gather,
    "Concat": _concat, "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Slice": _slice, "Reshape": _reshape,
    "Flatten": _flatten, "Transpose": _transpose, "Expand": _expand, "Tile": _tile,
    "ConstantOfShape": _constant_of_shape, "Range": _range, "Where": _where, "Clip": _clip,
    "Size": lambda ins, at, opset, budget: [np.array(ins[0].size, dtype=np.int64)],
    "Add": _elementwise(np.add), "Sub": _elementwise(np.subtract), "Mul": _elementwise(np.multiply),
    "Div": _elementwise(_div), "Mod": _mod, "Pow": _elementwise(np.power),
    "Equal": _elementwise(np.equal), "Less": _elementwise(np.less), "Greater": _elementwise(np.greater),
    "LessOrEqual": _elementwise(np.less_equal), "GreaterOrEqual": _elementwise(np.greater_equal),
    "And": _elementwise(np.logical_and), "Or": _elementwise(np.logical_or), "Xor": _elementwise(np.logical_xor),
    "Max": _variadic(np.maximum), "Min": _variadic(np.minimum),
    "Neg": _unary(np.negative), "Abs": _unary(np.abs), "Floor": _unary(np.floor), "Ceil": _unary(np.ceil),
    "Round": _unary(np.round), "Sqrt": _unary(np.sqrt), "Reciprocal": _unary(np.reciprocal),
    "Sign": _unary(np.sign), "Not": _unary(np.logical_not), "Relu": _unary(lambda a: np.maximum(a, 0)),
    "ReduceProd": _reduce(np.prod, 18), "ReduceSum": _reduce(np.sum, 13), "ReduceMax": _reduce(np.max, 18),
    "ReduceMin": _reduce(np.min, 18),
}  # fmt: skip


def fold_node(op_type: str, inputs: list[Array | None], attrs: dict[str, Any], opset: int, n_outputs: int,
              budget: int = FOLD_BUDGET) -> list[Array] | None:
    """Outputs of one default-domain op on constant ``inputs`` (None = absent optional input).

    ``attrs`` holds decoded attributes (ints, floats, tuples; a tensor attribute as an ndarray).
    Returns None when the op is not folded; never allocates a tensor over ``budget`` elements.
    """
    if op_type == "Split":
        fn: Folder = lambda ins, at, o, b: _split(ins, at, o, b, n_outputs)  # noqa: E731
    else:
        fn = FOLDERS.get(op_type)  # type: ignore[assignment]
    if fn is None or not inputs or inputs[0] is None or any(a is not None and a.size > budget for a in inputs):
        return None
    if op_type not in ("Slice", "Clip", "Split", "Squeeze", "Unsqueeze") and any(a is None for a in inputs):
        return None
    try:
        out = fn(list(inputs), attrs, opset, budget)  # type: ignore[arg-type]
    except (_Refuse, ValueError, TypeError, IndexError, KeyError, OverflowError, ZeroDivisionError, FloatingPointError):
        return None
    if len(out) != n_outputs or any(o.size > budget or o.dtype.kind not in "iufb" for o in out):
        return None
    return [np.array(o, copy=True) for o in out]  # (ascontiguousarray would turn scalars into 1-D)


__all__ = ["FOLDERS", "FOLD_BUDGET", "fold_node"]
