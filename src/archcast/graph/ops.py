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

from archcast.errors import GraphValidationError
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
        unknown: the cost cannot be known from the node alone (control flow: the work is in a
            sub-graph); ``flops`` is 0 and summaries report the op as of unknown cost.
    """

    op_type: str
    flops: Callable[[OpContext], int]
    config_inputs: tuple[int, ...] = ()
    scalar_config: bool = False
    generic: bool = False
    unknown: bool = False

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


def cost_unknown(op_type: str) -> bool:
    """True when the cost of ``op_type`` is not known: generic fallback or control flow."""
    return op_type not in OP_SPECS or OP_SPECS.get(op_type).unknown


def is_shape_only(op_type: str) -> bool:
    """True for ops that only compute or move shapes/indices (zero FLOPs, see :data:`SHAPE_ONLY_OPS`)."""
    return op_type in SHAPE_ONLY_OPS


def known_op_types() -> list[str]:
    """Sorted op types that have a dedicated spec."""
    return OP_SPECS.names()


MAX_COST = 1 << 80  # FLOPs or bytes of one operator past this are corrupt input, not a network


def op_cost(op_type: str, ctx: OpContext) -> OpCost:
    """FLOPs, parameter elements and memory bytes of one operator (see the module docstring).

    Raises:
        GraphValidationError: attributes or shapes the spec cannot cost (``group=0``, ``group=inf``,
            a missing input...), or a cost over 2^80 (a 2^62 kernel...), naming the op.
    """
    try:
        flops = int(spec_for(op_type).flops(ctx))
    except (ArithmeticError, ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise GraphValidationError(f"{op_type}: cannot compute its cost from attributes and shapes: {reason}") from None
    params = 0
    mem = 0
    for i, (s, k) in enumerate(zip(ctx.inputs, ctx.kinds)):
        if k == PARAM and s is not None:
            params += numel(s)
            mem += numel(s) * ctx._isz(ctx.input_itemsize, i)
    for i, s in enumerate(ctx.outputs):
        mem += numel(s) * ctx._isz(ctx.output_itemsize, i)
    if max(flops, params, mem) > MAX_COST:
        raise GraphValidationError(
            f"{op_type}: cost over 2^80 (flops {_magnitude(flops)}, params {_magnitude(params)}, bytes "
            f"{_magnitude(mem)}): dims or attributes are not those of a real network"
        )
    return OpCost(max(flops, 0), params, mem)


def _magnitude(x: int) -> str:
    return f"~2^{x.bit_length() - 1}" if x > 1 << 40 else str(x)


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
def int_attr(c: OpContext, name: str, default: int, low: int = 0) -> int:
    """An integer attribute, checked: an int (or integral float) >= ``low``; else ValueError."""
    v = c.attrs.get(name, default)
    if isinstance(v, tuple) and len(v) == 1:
        v = v[0]
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise ValueError(f"attribute {name}={v!r} must be an integer >= {low}")
    return v


def _kernel(c: OpContext) -> tuple[int, ...]:
    k = c.attrs.get("kernel_shape") or (c.shape(1)[2:] if c.has(1) else ())
    if not isinstance(k, tuple):
        k = (k,)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in k):
        raise ValueError(f"kernel_shape {k!r} must hold non-negative integers")
    return k


def _conv(c: OpContext) -> int:
    x, y = c.shape(0), c.outputs[0]
    group = int_attr(c, "group", 1, low=1)
    kernel = _kernel(c)
    cin_per_group = x[1] // group
    macs = y[0] * y[1] * numel(y[2:]) * cin_per_group * numel(kernel)
    return 2 * macs + (numel(y) if c.has(2) else 0)


def _conv_transpose(c: OpContext) -> int:
    x, y = c.shape(0), c.outputs[0]
    group = int_attr(c, "group", 1, low=1)
    kernel = _kernel(c)
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
    """2 FLOPs per point of the joint index space when something is summed over (1 when not).

    The equation is parsed strictly (letters, at most one ``...`` per term, ranks matching the
    input shapes); anything else falls back to the generic cost. Linear in the equation length.
    """
    eq = str(c.attrs.get("equation", "")).replace(" ", "")
    present = [s for s in c.inputs if s is not None]
    parsed = _einsum_sizes(eq, present) if len(eq) <= 256 else None
    if parsed is None:
        return GENERIC.flops(c)
    sizes, out_letters = parsed
    contracted = any(k not in out_letters for k in sizes)
    total = numel(sizes.values())
    if len(present) == 1:
        return total if contracted else 0
    return total * (len(present) - 1) * (2 if contracted else 1)


def _einsum_sizes(eq: str, shapes: list[Shape]) -> tuple[dict[str, int], set[str]] | None:
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes) or "->" in rhs or rhs.count("...") > 1:
        return None
    sizes: dict[str, int] = {}
    n_ell_max = 0
    for term, shape in zip(terms, shapes):
        if term.count("...") > 1:
            return None
        head, ell, tail = term.partition("...")
        if not (head + tail).isalpha() or not (head + tail).isascii():
            return None
        n_ell = len(shape) - len(head) - len(tail)
        if n_ell < 0 or (not ell and n_ell):
            return None
        n_ell_max = max(n_ell_max, n_ell)
        letters = list(head) + [f"...{n_ell - 1 - j}" for j in range(n_ell)] + list(tail)
        for letter, d in zip(letters, shape):
            sizes[letter] = max(sizes.get(letter, 1), int(d))
    if rhs and not rhs.replace("...", "").isalpha():
        return None
    if not arrow:  # implicit output: letters seen once, plus the ellipsis dims
        out = {k for k in sizes if k.startswith("...") or lhs.count(k) == 1}
    else:
        out = set(rhs.replace("...", "")) | ({f"...{j}" for j in range(n_ell_max)} if "..." in rhs else set())
    return sizes, out


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
    k = c.attrs.get("kernel_shape", ())
    if not isinstance(k, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in k):
        raise ValueError(f"kernel_shape {k!r} must hold non-negative integers")
    return c.out_elems * numel(k)


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

# ---------------------------------------------------------------------------- recurrent
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
# element-wise FLOPs per hidden unit per step: LSTM 3 sigmoids (3 each) + 2 tanh + 3 mul + 1 add;
# GRU 2 sigmoids + 1 tanh + r*h + (1-z)*n + z*h (4); RNN one tanh
_CELL_FLOPS = {"LSTM": 15, "GRU": 12, "RNN": 1}


def _rnn(op: str) -> Callable[[OpContext], int]:
    """Per step and direction: input and recurrent GEMMs (2*B*G*H*(I+H)), both biases (2*G*H*B)
    and the cell's element-wise work; times sequence length and directions. ``X`` is
    ``[seq, batch, input]`` (``layout=1``: ``[batch, seq, input]``)."""
    def flops(c: OpContext) -> int:
        x = c.shape(0)
        if len(x) != 3:
            raise ValueError(f"{op} input X must be rank 3, got {x}")
        layout = int_attr(c, "layout", 0)
        seq, batch, inp = (x[1], x[0], x[2]) if layout else (x[0], x[1], x[2])
        g = _GATES[op]
        w = c.shape(1) if c.has(1) else None
        dirs = w[0] if w and len(w) == 3 else (2 if c.attrs.get("direction") == "bidirectional" else 1)
        hidden = int_attr(c, "hidden_size", (w[1] // g) if w and len(w) == 3 else 0)
        per_step = 2 * batch * g * hidden * (inp + hidden) + _CELL_FLOPS[op] * batch * hidden
        if c.has(3):
            per_step += 2 * g * hidden * batch
        return seq * dirs * per_step
    return flops


for _op in _GATES:
    _register([_op], _rnn(_op), config_inputs=(4,))

# ---------------------------------------------------------------------------- attention
def _attention_core(b: int, heads: int, sq: int, skv: int, dqk: int, dv: int) -> int:
    """Q·Kᵀ (2·B·H·Sq·Skv·Dqk) + softmax (5 per score) + scores·V (2·B·H·Sq·Skv·Dv)."""
    scores = b * heads * sq * skv
    return 2 * scores * dqk + 5 * scores + 2 * scores * dv


def _attention(c: OpContext) -> int:
    """ONNX ``Attention`` (opset 23): Q/K/V either ``[B, H, S, D]`` or ``[B, S, H*D]`` with
    ``q_num_heads``/``kv_num_heads``; past key/value lengthen the key sequence."""
    q, k, v = c.shape(0), c.shape(1), c.shape(2)
    if len(q) == 4:
        b, heads, sq, dqk = q
        skv, dv = k[-2], v[-1]
    elif len(q) == 3:
        heads = int_attr(c, "q_num_heads", 1, low=1)
        kv_heads = int_attr(c, "kv_num_heads", heads, low=1)
        b, sq, dqk = q[0], q[1], q[2] // heads
        skv, dv = k[1], v[2] // kv_heads
    else:
        raise ValueError(f"Attention Q must be rank 3 or 4, got {q}")
    if c.has(4):
        skv += c.shape(4)[-2]
    return _attention_core(b, heads, sq, skv, dqk, dv)


def _ms_attention(c: OpContext) -> int:
    """com.microsoft ``Attention``: input ``[B, S, hidden_in]``, packed QKV weights
    ``[hidden_in, 3*hidden]``; projection GEMM + attention core over ``num_heads``."""
    x = c.shape(0)
    b, s, hin = x
    w = c.shape(1)
    heads = int_attr(c, "num_heads", 1, low=1)
    qkv = w[-1]
    hidden = qkv // 3
    proj = 2 * b * s * hin * qkv + (b * s * qkv if c.has(2) else 0)
    skv = s + (c.shape(4)[3] if c.has(4) and len(c.shape(4)) == 5 else 0)
    return proj + _attention_core(b, heads, s, skv, hidden // heads, hidden // heads)


def _ms_mha(c: OpContext) -> int:
    """com.microsoft ``MultiHeadAttention``/``GroupQueryAttention``: projected Q ``[B, S, H*D]``
    (or packed QKV), K/V ``[B, Skv, Hkv*D]`` or ``[B, Hkv, Skv, D]``."""
    q = c.shape(0)
    heads = int_attr(c, "num_heads", 1, low=1)
    b, sq = q[0], q[1]
    if len(q) == 3:
        kv_heads = int_attr(c, "kv_num_heads", heads, low=1)
        width = q[2] if c.has(1) else q[2] * heads // (heads + 2 * kv_heads)
        d = width // heads
    else:  # packed [B, S, H, 3, D]
        d = q[-1]
    skv = sq
    if c.has(1):
        k = c.shape(1)
        skv = k[1] if len(k) == 3 else k[-2]
    return _attention_core(b, heads, sq, skv, d, d)


_register(["Attention"], _attention, config_inputs=(3,))
_register(["com.microsoft.Attention"], _ms_attention, config_inputs=(3, 6))
_register(["com.microsoft.MultiHeadAttention", "com.microsoft.GroupQueryAttention"], _ms_mha)
_register(["RotaryEmbedding", "com.microsoft.RotaryEmbedding"], _per_elem(3), config_inputs=(1,))  # 2 mul + add
_register(["com.microsoft.SkipLayerNormalization", "com.microsoft.SkipSimplifiedLayerNormalization"],
          _per_elem(8))  # the skip add, normalisation (5), scale and bias
_register(["com.microsoft.SimplifiedLayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization",
           "com.microsoft.RMSNormalization"], _per_elem(4))  # square, mean, rsqrt-scale, gamma
_register(["com.microsoft.BiasGelu"], _per_elem(6))
_register(["com.microsoft.FastGelu", "com.microsoft.Gelu"], lambda c: (9 if c.has(1) else 8) * c.out_elems)
_register(["com.microsoft.QuickGelu"], _per_elem(4))
_register(["com.microsoft.BiasAdd"], _per_elem(2))
_register(["com.microsoft.FusedMatMul"], _matmul)
_register(["com.microsoft.FusedConv"], lambda c: _conv(c) + c.out_elems)  # + the fused activation
_register(["com.microsoft.FusedGemm"], lambda c: _gemm(c) + c.out_elems)


# onnxruntime's NCHWc-layout kernels (its optimised CPU graph, docs/design.md §6)
def nchwc_conv_flops(x: Shape, y: Shape, group: int, window: int, fused_activation: bool, fused_sum: bool) -> int:
    """An NCHWc convolution: the plain convolution's multiply-adds, + the bias, + one op per output
    for a fused activation and one for a fused residual input (``Sum``)."""
    macs = numel(y) * max(int(x[1]) // max(group, 1), 1) * window
    return 2 * macs + numel(y) * (1 + int(fused_activation) + int(fused_sum))


def _nchwc_conv(c: OpContext) -> int:
    k = c.attrs.get("kernel_shape")
    w = c.shape(1) if c.has(1) else ()
    window = numel(_kernel(c)) if k else (numel(w[2:]) if len(w) == 4 else 1)  # a folded BN has no kernel_shape
    return nchwc_conv_flops(c.shape(0), c.outputs[0], int_attr(c, "group", 1, low=1), window,
                            "activation" in c.attrs, c.has(3))


_register(["com.microsoft.nchwc.Conv"], _nchwc_conv)
_register(["com.microsoft.nchwc.MaxPool", "com.microsoft.nchwc.AveragePool"], _window)
_register(["com.microsoft.nchwc.GlobalAveragePool"], lambda c: _in_elems(c) + c.out_elems)
_register(["com.microsoft.nchwc.GlobalMaxPool"], _in_elems)
_register(["com.microsoft.nchwc.Upsample"], _per_elem(1))
_register(["com.microsoft.nchwc.ReorderInput", "com.microsoft.nchwc.ReorderOutput"], _zero)  # a layout copy

# ---------------------------------------------------------------------------- more reductions and ops
_register(["ReduceL1", "ReduceLogSum"], lambda c: _in_elems(c) + c.out_elems, config_inputs=(1,))
_register(["ReduceLogSumExp"], lambda c: 2 * _in_elems(c) + c.out_elems, config_inputs=(1,))
_register(["ArgMax", "ArgMin"], _in_elems)
_register(["TopK"], lambda c: _in_elems(c) * max(1, int(math.log2(max(c.shape(0)[int_attr(c, "axis", -1, low=-64)], 2)))),
          config_inputs=(1,))  # a partial sort: n log k comparisons, k ~ the axis
_register(["Selu", "Mish", "Celu", "ThresholdedRelu", "Softsign", "Shrink", "HardMax", "Hardmax",
           "IsNaN", "IsInf", "BitShift", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh"],
          _per_elem(1), scalar_config=True)
_register(["Sum", "Mean"], lambda c: max(len(c.activation_shapes) + len(c.param_shapes) - 1, 1) * c.out_elems,
          scalar_config=True)
_register(["LRN"], lambda c: c.out_elems * (int_attr(c, "size", 1, low=0) + 3))
_register(["QuantizeLinear", "DequantizeLinear"], _per_elem(2), config_inputs=(1, 2))
_register(["QLinearConv"], lambda c: _qconv(c), config_inputs=(1, 2, 4, 5, 6, 7))
_register(["QLinearMatMul", "MatMulInteger"], lambda c: 2 * c.out_elems * (c.shape(0)[-1] if c.shape(0) else 1),
          config_inputs=(1, 2, 4, 5, 6, 7))


def _qconv(c: OpContext) -> int:
    x, y = c.shape(0), c.outputs[0]
    group = int_attr(c, "group", 1, low=1)
    w = c.shape(3)
    kernel = c.attrs.get("kernel_shape") or w[2:]
    return 2 * y[0] * y[1] * numel(y[2:]) * (x[1] // group) * numel(kernel)


# ---------------------------------------------------------------------------- control flow
# The work of If/Loop/Scan is in sub-graphs the IR does not expand: cost reported as unknown.
_register(["If", "Loop", "Scan", "SequenceMap"], _zero, unknown=True)

# ---------------------------------------------------------------------------- shape-only ops (0 FLOPs)
SHAPE_ONLY_OPS = frozenset({
    "Shape", "Size", "Constant", "ConstantOfShape", "Cast", "CastLike", "Squeeze", "Unsqueeze", "Reshape",
    "Flatten", "Identity", "Range", "NonZero", "EyeLike", "OneHot", "Gather", "GatherElements", "GatherND",
    "Concat", "Slice", "Split", "Transpose", "Expand", "Tile", "Pad", "Dropout", "ScatterND", "ScatterElements",
    "Scatter", "Compress", "Trilu", "ReverseSequence", "Unique", "Optional", "OptionalGetElement",
    "OptionalHasElement", "SequenceConstruct", "SequenceAt", "SequenceEmpty", "SequenceInsert", "SequenceErase",
    "SequenceLength", "SplitToSequence", "ConcatFromSequence", "CenterCropPad", "DepthToSpace", "SpaceToDepth",
    "NonMaxSuppression", "Col2Im",
})  # fmt: skip
_register(sorted(op for op in SHAPE_ONLY_OPS if op not in OP_SPECS), _zero, config_inputs=(1, 2, 3, 4))

__all__ = [
    "ABSENT", "ACTIVATION", "CONFIG", "GENERIC", "INPUT_KINDS", "OP_SPECS", "PARAM", "SHAPE_ONLY_OPS",
    "OpContext", "OpCost", "OpSpec", "cost_unknown", "int_attr", "is_generic", "is_shape_only", "known_op_types",
    "nchwc_conv_flops", "numel", "op_cost", "op_cost_from_shapes", "spec_for",
]
