"""Per-operator cost specs: FLOPs, parameter elements and memory bytes of one ONNX operator.

Specs live in :data:`OP_SPECS`, keyed by the exact ONNX op type (``"Conv"``, ``"Gemm"``...). A
frontend describes one operator as an :class:`OpContext` (attributes plus the shape and role of
every input and output) and calls :func:`op_cost`. Op types without a spec get the *generic*
fallback (FLOPs = output elements); :func:`is_generic` says which, so coverage can be reported.

FLOPs convention (documented here, asserted by the golden tests):

* A multiply-add counts 2 FLOPs. Conv: ``2 * N * C_out * prod(out_spatial) * (C_in/group) *
  prod(kernel)``; a bias adds 1 FLOP per output element. ConvTranspose: ``2 * N * C_in *
  prod(in_spatial) * (C_out/group) * prod(kernel)`` plus 1 per output element for a bias.
  Gemm: ``2*M*N*K`` plus ``M*N`` when ``C`` is given (alpha/beta scaling is not counted).
  MatMul: ``2 * out_elements * K``.
* BatchNormalization (inference, statistics are constants): 2 per element (a scale and a shift).
  Layer/Instance/GroupNormalization: 5 per element (mean, subtract, square, sum, scale by 1/std)
  plus 1 each for the affine scale and bias.
* Element-wise: 1 per output element per elementary operation, a transcendental function (exp,
  log, erf, tanh, sqrt, sin...) counting 1. So Relu/Add/Mul/Sqrt = 1, Clip = 2, Sigmoid = 3
  (exp, add, reciprocal), HardSigmoid = 4, HardSwish = 5, Gelu = 5 (9 with ``approximate="tanh"``),
  Softmax = 5 (max, subtract, exp, sum, divide).
* Pooling: ``prod(kernel)`` per output element. GlobalAveragePool/ReduceMean: input elements (sums)
  + output elements (divides); GlobalMaxPool/ReduceMax/ReduceSum: input elements.
* Resize: 0 for ``nearest``; ``2 * 2^r`` per output element for ``linear`` and ``2 * 4^r`` for
  ``cubic``, where ``r`` is the number of axes whose size changes.
* Data movement (Reshape, Transpose, Concat, Slice, Gather, Pad, Cast, Dropout at inference...): 0.

``params`` = elements of the inputs the frontend marked as parameters (folded weights, biases, BN
statistics). ``memory_bytes`` = bytes of all outputs + bytes of the parameters, using each tensor's
element size (4 for float32, the default when unknown). Configuration constants (Reshape's target
shape, Clip's bounds, Resize's scales...) are neither parameters nor memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from archcast.registry import Registry

Shape = tuple[int, ...]

#: Roles of an operator input, as set by the frontend.
ACTIVATION, PARAM, CONFIG, ABSENT = "activation", "param", "config", "absent"
INPUT_KINDS = (ACTIVATION, PARAM, CONFIG, ABSENT)


def numel(shape: Iterable[int]) -> int:
    """Number of elements of a tensor of ``shape`` (a scalar ``()`` has 1)."""
    return math.prod(int(d) for d in shape)


@dataclass(frozen=True)
class OpContext:
    """Everything a cost spec may read about one operator.

    Attributes:
        attrs: decoded ONNX attributes (tuples kept whole).
        inputs: shape of every ONNX input position; ``None`` where the input is absent.
        kinds: role of each input: ``"activation"``, ``"param"`` (folded, counted in ``params``),
            ``"config"`` (constant setting, not counted) or ``"absent"``.
        outputs: shape of every output.
        input_itemsize: bytes per element of each input (empty → 4 for all).
        output_itemsize: bytes per element of each output (empty → 4 for all).
    """

    attrs: Mapping[str, Any]
    inputs: tuple[Shape | None, ...]
    kinds: tuple[str, ...]
    outputs: tuple[Shape, ...]
    input_itemsize: tuple[int, ...] = ()
    output_itemsize: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.kinds) != len(self.inputs):
            raise ValueError(f"OpContext: {len(self.inputs)} inputs but {len(self.kinds)} kinds")
        bad = [k for k in self.kinds if k not in INPUT_KINDS]
        if bad:
            raise ValueError(f"OpContext: input kind {bad[0]!r} is not one of {INPUT_KINDS}")

    @classmethod
    def from_shapes(
        cls,
        attrs: Mapping[str, Any],
        activation_shapes: Sequence[Sequence[int]],
        param_shapes: Sequence[Sequence[int]],
        output_shapes: Sequence[Sequence[int]],
    ) -> "OpContext":
        """Activations first, then parameters, in ONNX input order (Conv: X, W, B; BN: X, scale...)."""
        ins = [tuple(s) for s in activation_shapes] + [tuple(s) for s in param_shapes]
        kinds = [ACTIVATION] * len(activation_shapes) + [PARAM] * len(param_shapes)
        return cls(dict(attrs), tuple(ins), tuple(kinds), tuple(tuple(s) for s in output_shapes))

    def has(self, i: int) -> bool:
        """Input position ``i`` is present."""
        return i < len(self.inputs) and self.kinds[i] != ABSENT and self.inputs[i] is not None

    def shape(self, i: int) -> Shape:
        """Shape of input ``i`` (raises ``IndexError`` when absent)."""
        if not self.has(i):
            raise IndexError(f"input {i} is absent")
        return self.inputs[i]  # type: ignore[return-value]

    @property
    def activation_shapes(self) -> list[Shape]:
        return [s for s, k in zip(self.inputs, self.kinds) if k == ACTIVATION and s is not None]

    @property
    def param_shapes(self) -> list[Shape]:
        return [s for s, k in zip(self.inputs, self.kinds) if k == PARAM and s is not None]

    @property
    def out_elems(self) -> int:
        """Elements of the first output (the operator's result)."""
        return numel(self.outputs[0]) if self.outputs else 0

    def _isz(self, sizes: tuple[int, ...], i: int) -> int:
        return sizes[i] if i < len(sizes) and sizes[i] > 0 else 4


@dataclass(frozen=True)
class OpCost:
    """Cost of one operator: ``flops`` (multiply-add = 2), ``params`` (elements), ``memory_bytes``."""

    flops: int
    params: int
    memory_bytes: int


@dataclass(frozen=True)
class OpSpec:
    """How to cost one ONNX op type.

    Attributes:
        op_type: exact ONNX op type.
        flops: ``OpContext -> int``.
        config_inputs: input positions that hold settings, never parameters (Clip's min/max...).
        scalar_config: single-element constant inputs are settings (``x * 0.5``), not parameters.
        generic: True only for the fallback spec.
    """

    op_type: str
    flops: Callable[[OpContext], int]
    config_inputs: tuple[int, ...] = ()
    scalar_config: bool = False
    generic: bool = False

    def is_config(self, position: int, n_elements: int) -> bool:
        """A constant at ``position`` with ``n_elements`` is a setting rather than a parameter."""
        return position in self.config_inputs or (self.scalar_config and n_elements <= 1)


OP_SPECS: Registry[OpSpec] = Registry("op cost spec")
GENERIC = OpSpec("<generic>", lambda c: sum(numel(s) for s in c.outputs), scalar_config=True, generic=True)


def _register(names: Iterable[str], flops: Callable[[OpContext], int], **kw: Any) -> None:
    for name in names:
        OP_SPECS.register(name, OpSpec(name, flops, **kw))


def spec_for(op_type: str) -> OpSpec:
    """The registered spec of ``op_type``, or :data:`GENERIC` when there is none."""
    return OP_SPECS.get(op_type) if op_type in OP_SPECS else GENERIC


def is_generic(op_type: str) -> bool:
    """True when ``op_type`` is costed only by the generic fallback."""
    return op_type not in OP_SPECS


def known_op_types() -> list[str]:
    """Sorted op types that have a dedicated spec."""
    return OP_SPECS.names()


def op_cost(op_type: str, ctx: OpContext) -> OpCost:
    """FLOPs, parameter elements and memory bytes of one operator (see the module docstring)."""
    flops = int(spec_for(op_type).flops(ctx))
    params = 0
    mem = 0
    for i, (s, k) in enumerate(zip(ctx.inputs, ctx.kinds)):
        if k == PARAM and s is not None:
            params += numel(s)
            mem += numel(s) * ctx._isz(ctx.input_itemsize, i)
    for i, s in enumerate(ctx.outputs):
        mem += numel(s) * ctx._isz(ctx.output_itemsize, i)
    return OpCost(max(flops, 0), params, mem)


def op_cost_from_shapes(
    op_type: str,
    attrs: Mapping[str, Any],
    activation_shapes: Sequence[Sequence[int]],
    param_shapes: Sequence[Sequence[int]],
    output_shapes: Sequence[Sequence[int]],
) -> OpCost:
    """Shortcut for hand-built cases: float32 tensors, activations then parameters in ONNX order."""
    return op_cost(op_type, OpContext.from_shapes(attrs, activation_shapes, param_shapes, output_shapes))


# ---------------------------------------------------------------------------- linear algebra
def _conv(c: OpContext) -> int:
    x, y = c.shape(0), c.outputs[0]
    group = int(c.attrs.get("group", 1))
    kernel = c.attrs.get("kernel_shape") or (c.shape(1)[2:] if c.has(1) else ())
    cin_per_group = x[1] // group
    macs = y[0] * y[1] * numel(y[2:]) * cin_per_group * numel(kernel)
    return 2 * macs + (numel(y) if c.has(2) else 0)


def _conv_transpose(c: OpContext) -> int:
    x, y = c.shape(0), c.outputs[0]
    group = int(c.attrs.get("group", 1))
    kernel = c.attrs.get("kernel_shape") or (c.shape(1)[2:] if c.has(1) else ())
    cout_per_group = c.shape(1)[1] if c.has(1) else y[1] // group
    macs = x[0] * x[1] * numel(x[2:]) * cout_per_group * numel(kernel)
    return 2 * macs + (numel(y) if c.has(2) else 0)


def _gemm(c: OpContext) -> int:
    a = c.shape(0)
    k = a[0] if c.attrs.get("transA", 0) else a[1]
    mn = numel(c.outputs[0])
    return 2 * mn * k + (mn if c.has(2) else 0)


def _matmul(c: OpContext) -> int:
    a = c.shape(0)
    return 2 * c.out_elems * (a[-1] if a else 1)


def _einsum(c: OpContext) -> int:
    """Best effort: 2 FLOPs per point of the joint index space when something is summed over."""
    eq = str(c.attrs.get("equation", "")).replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",") if lhs else []
    present = [s for s in c.inputs if s is not None]
    if len(terms) != len(present):
        return GENERIC.flops(c)
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, present):
        if "..." in term:  # ellipsis dims get placeholder letters, aligned from the right
            head, tail = term.split("...")
            n_ell = len(shape) - len(head) - len(tail)
            term = head + "".join(chr(0x100 + n_ell - 1 - j) for j in range(n_ell)) + tail
        for letter, d in zip(term, shape):
            sizes[letter] = max(sizes.get(letter, 1), int(d))
    if not rhs and "->" not in eq:  # implicit output: letters seen once
        rhs = "".join(sorted(k for k in sizes if lhs.count(k) == 1))
    out_letters = set(rhs.replace("...", "")) | {k for k in sizes if ord(k) >= 0x100}
    contracted = any(k not in out_letters for k in sizes)
    total = numel(sizes.values())
    if len(present) == 1:
        return total if contracted else 0
    return total * (len(present) - 1) * (2 if contracted else 1)


_register(["Conv"], _conv)
_register(["ConvTranspose"], _conv_transpose)
_register(["Gemm"], _gemm)
_register(["MatMul"], _matmul)
_register(["Einsum"], _einsum)

# ---------------------------------------------------------------------------- normalisation
def _per_elem(k: int) -> Callable[[OpContext], int]:
    return lambda c: k * c.out_elems


def _layer_norm(c: OpContext) -> int:
    return (5 + int(c.has(1)) + int(c.has(2))) * c.out_elems


_register(["BatchNormalization"], _per_elem(2))
_register(["LayerNormalization"], _layer_norm)
_register(["InstanceNormalization", "GroupNormalization"], _per_elem(7))

# ---------------------------------------------------------------------------- element-wise
_register(["Relu", "Neg", "Abs", "Sign", "Floor", "Ceil", "Round", "Not", "Reciprocal",
           "Sqrt", "Exp", "Log", "Sin", "Cos", "Tan", "Tanh", "Erf"], _per_elem(1))
_register(["LeakyRelu", "PRelu", "Elu"], _per_elem(2))
_register(["Sigmoid", "Softplus"], _per_elem(3))
_register(["HardSigmoid"], _per_elem(4))
_register(["HardSwish"], _per_elem(5))
_register(["Clip"], _per_elem(2), config_inputs=(1, 2))
_register(["Softmax", "LogSoftmax"], _per_elem(5))
_register(["Gelu"], lambda c: (9 if c.attrs.get("approximate") == "tanh" else 5) * c.out_elems)
_register(["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod", "Equal", "Greater", "Less",
           "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Where"], _per_elem(1), scalar_config=True)

# ---------------------------------------------------------------------------- pooling / reductions
def _window(c: OpContext) -> int:
    return c.out_elems * numel(c.attrs.get("kernel_shape", ()))


def _in_elems(c: OpContext) -> int:
    return numel(c.shape(0))


_register(["MaxPool", "AveragePool", "LpPool"], _window)
_register(["GlobalAveragePool", "ReduceMean"], lambda c: _in_elems(c) + c.out_elems, config_inputs=(1,))
_register(["GlobalMaxPool", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"], _in_elems, config_inputs=(1,))
# sum of squares (2 per input element) then one square root per output element
_register(["ReduceL2", "ReduceSumSquare"], lambda c: 2 * _in_elems(c) + c.out_elems, config_inputs=(1,))
_register(["CumSum"], _in_elems, config_inputs=(1,))  # one add per element along the axis

# ---------------------------------------------------------------------------- resampling
def _resize(c: OpContext) -> int:
    mode = str(c.attrs.get("mode", "nearest"))
    if mode == "nearest":
        return 0
    x, y = c.shape(0), c.outputs[0]
    r = sum(1 for a, b in zip(x, y) if a != b)
    taps = (2 if mode == "linear" else 4) ** r
    return 2 * taps * c.out_elems


_register(["Resize", "Upsample"], _resize, config_inputs=(1, 2, 3))

# ---------------------------------------------------------------------------- data movement (0 FLOPs)
_zero: Callable[[OpContext], int] = lambda c: 0
_register(["Concat", "Flatten", "Transpose", "Gather", "GatherElements", "Identity", "Shape",
           "Constant", "ConstantOfShape", "Cast", "DepthToSpace", "SpaceToDepth", "Size"], _zero)
_register(["Reshape", "Expand", "Tile", "Squeeze", "Unsqueeze", "Split"], _zero, config_inputs=(1,))
_register(["Slice"], _zero, config_inputs=(1, 2, 3, 4))
_register(["Pad"], _zero, config_inputs=(1, 2, 3))
_register(["Dropout"], _zero, config_inputs=(1, 2))

__all__ = [
    "ABSENT", "ACTIVATION", "CONFIG", "GENERIC", "INPUT_KINDS", "OP_SPECS", "PARAM", "OpContext",
    "OpCost", "OpSpec", "is_generic", "known_op_types", "numel", "op_cost", "op_cost_from_shapes",
    "spec_for",
]
