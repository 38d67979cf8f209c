"""Whole-network tokenization: a ``kind="network"`` :class:`NetGraph` as tokens + adjacency.

One token per operator, tokens in topological order, no positional encoding (NAR-Former V2).
Each tokenizer first extracts a raw numeric table (one row per node, named columns, units as in the
IR) and then encodes it; :meth:`NetworkTokenizer.explain` prints the raw table so every number in a
token can be traced back to the graph.

Two tokenizers are registered in :data:`TOKENIZERS`:

* ``"narformer-v2"``: the reference configuration (op one-hot ‖ 8 first-element attributes ‖
  N,C,H,W output shape, every scalar a 10-dim sinusoid; graph features ``/1e9`` then sinusoid).
  One deviation: ops outside the vocabulary get an explicit *unknown* slot (the reference gives
  them an all-zero code) and are counted in :attr:`TokenizedGraph.unknown_ops`.
* ``"archcast-v1"``: the default; larger vocabulary, whole attributes, channels, costs and degrees
  on log scales (raw-scaled and sinusoid), graph features on a log scale.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph, Node
from archcast.registry import Registry
from archcast.tokenizer.encoding import sinusoid

UNKNOWN_OP = "<unknown>"


# ---------------------------------------------------------------------------------- data
@dataclass
class TokenizedGraph:
    """One encoded network.

    Attributes:
        tokens: ``[N, d]`` float32, one row per operator in topological order.
        adj: ``[N, N]`` float32, 1 where two operators share an edge (either direction), 0 on the
            diagonal; ``None`` for graphs over :data:`DENSE_MAX_NODES` nodes (never built densely:
            use ``edges``, or :meth:`dense_adjacency` which checks the memory budget first).
        graph_features: ``[g]`` float32, graph-level features.
        op_types: ``N`` op types in token order.
        unknown_ops: op type -> count, for ops that fell in the unknown vocabulary slot.
        name: the graph's name.
        fingerprint: fingerprint of the tokenizer that produced it.
    """

    tokens: np.ndarray
    adj: np.ndarray
    graph_features: np.ndarray
    op_types: list[str]
    unknown_ops: dict[str, int] = field(default_factory=dict)
    name: str = ""
    fingerprint: str = ""
    edges: np.ndarray | None = None  # [E, 2] int64 forward edges (src < dst) in token order

    @property
    def n_nodes(self) -> int:
        return int(self.tokens.shape[0])

    def dense_adjacency(self) -> np.ndarray:
        """``adj`` if kept, else built from ``edges``; refuses graphs whose ``[N, N]`` float32
        matrix would exceed :data:`DENSE_BUDGET_BYTES`."""
        if self.adj is not None:
            return self.adj
        if self.edges is None:
            raise InvalidInputError(f"tokenized graph {self.name!r} holds neither an adjacency nor edges")
        return _dense(self.n_nodes, self.edges, self.name)


#: Graphs up to this many nodes keep a dense adjacency in :class:`TokenizedGraph` (64 MiB at most).
DENSE_MAX_NODES = 4096
#: No dense adjacency (one graph or a padded batch) is allocated beyond this many bytes.
DENSE_BUDGET_BYTES = 1 << 30


def check_dense_budget(n_bytes: int, what: str) -> None:
    if n_bytes > DENSE_BUDGET_BYTES:
        raise InvalidInputError(
            f"{what} would need a dense adjacency of {n_bytes / 2**30:.1f} GiB (budget "
            f"{DENSE_BUDGET_BYTES / 2**30:.0f} GiB); use the edge lists (TokenizedGraph.edges) for graphs this big"
        )


def _dense(n: int, edges: np.ndarray, name: str) -> np.ndarray:
    check_dense_budget(4 * n * n, f"graph {name!r} ({n} nodes)")
    adj = np.zeros((n, n), dtype=np.float32)
    if len(edges):
        adj[edges[:, 0], edges[:, 1]] = 1.0
        adj[edges[:, 1], edges[:, 0]] = 1.0
    np.fill_diagonal(adj, 0.0)
    return adj


def collate(items: Sequence[TokenizedGraph]) -> dict[str, np.ndarray]:
    """Pad a list of encoded graphs into one batch.

    Returns numpy arrays: ``tokens [B, Nmax, d]`` float32, ``adj [B, Nmax, Nmax]`` float32,
    ``mask [B, Nmax]`` bool (True on real tokens), ``graph_features [B, g]`` float32,
    ``n_nodes [B]`` int64. Padding rows/columns are zero.
    """
    if not items:
        raise InvalidInputError("collate needs at least one TokenizedGraph, got an empty list")
    dims = {(t.tokens.shape[1], t.graph_features.shape[0]) for t in items}
    if len(dims) != 1:
        raise InvalidInputError(
            f"cannot batch graphs encoded with different widths (token dim, graph dim): {sorted(dims)}; "
            "encode them all with one tokenizer"
        )
    (d, g), b = dims.pop(), len(items)
    n_nodes = np.array([t.n_nodes for t in items], dtype=np.int64)
    n_max = int(n_nodes.max())
    check_dense_budget(4 * b * n_max * n_max + 4 * b * n_max * d, f"a batch of {b} graphs padded to {n_max} nodes")
    tokens = np.zeros((b, n_max, d), dtype=np.float32)
    adj = np.zeros((b, n_max, n_max), dtype=np.float32)
    mask = np.zeros((b, n_max), dtype=bool)
    for k, t in enumerate(items):
        n = t.n_nodes
        tokens[k, :n] = t.tokens
        adj[k, :n, :n] = t.dense_adjacency()
        mask[k, :n] = True
    gf = np.stack([t.graph_features for t in items]).astype(np.float32, copy=False).reshape(b, g)
    return {"tokens": tokens, "adj": adj, "mask": mask, "graph_features": gf, "n_nodes": n_nodes}


# ---------------------------------------------------------------------------------- attribute helpers
def _num(x: Any) -> float:
    """A numeric attribute value as float; strings and nested tuples count as 0; ints too large
    for a float become inf (refused later as a non-finite token)."""
    if not isinstance(x, (int, float)):
        return 0.0
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _ints(v: Any) -> list[float]:
    """A scalar or tuple attribute as a flat list of numbers (empty when absent or non-numeric)."""
    if v is None or isinstance(v, str):
        return []
    if isinstance(v, tuple):
        return [_num(x) for x in v]
    return [_num(v)]


def _first(v: Any) -> float:
    """First element of a tuple attribute (the reference's reading), the scalar itself, or 0."""
    xs = _ints(v)
    return xs[0] if xs else 0.0


def _shape0(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    return shapes[0] if shapes else ()


def has_bias(node: Node) -> float:
    """1.0 when the operator adds a bias, else 0.0.

    Uses ``attrs["has_bias"]`` when a frontend recorded it; otherwise infers it for Conv,
    ConvTranspose and Gemm from ``params`` exceeding the weight's element count (computed from the
    activation input/output shapes). Other ops: 0.
    """
    if "has_bias" in node.attrs:
        return float(bool(_first(node.attrs["has_bias"])))
    if node.op_type not in ("Conv", "ConvTranspose", "Gemm") or node.params <= 0:
        return 0.0
    x, y = _shape0(node.input_shapes), _shape0(node.output_shapes)
    if node.op_type == "Gemm":
        if len(x) < 2 or len(y) < 2:
            return 0.0
        k = x[0] if _first(node.attrs.get("transA", 0)) else x[-1]
        return float(node.params > k * y[-1])
    if len(x) < 2 or len(y) < 2:
        return 0.0
    g = _first(node.attrs.get("group", 1))
    group = max(int(g), 1) if math.isfinite(g) else 1
    kernel = math.prod(_ints(node.attrs.get("kernel_shape", ()))) or 1.0
    if not math.isfinite(kernel):
        return 0.0
    return float(_num(node.params) > _num(x[1]) * _num(y[1]) / group * kernel)


def batch_size(graph: NetGraph) -> int:
    """``meta["batch_size"]`` if set, else the first dim of the first graph input, else of the
    first listed node's first output, else 1."""
    if "batch_size" in graph.meta:
        b = graph.meta["batch_size"]
        if not isinstance(b, (int, float)) or isinstance(b, bool) or not 0 < b < 2**62:
            raise InvalidInputError(f"graph {graph.name!r}: meta batch_size must be a positive integer, got {b!r}")
        return int(b)
    for shape in graph.inputs.values():
        if shape:
            return int(shape[0])
    for node in graph.nodes:
        if node.output_shapes and node.output_shapes[0]:
            return int(node.output_shapes[0][0])
    return 1


def _signed_log2(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log2(1 + |x|)``: a log scale that also takes negative axes."""
    return np.sign(x) * np.log2(1.0 + np.abs(x))


# ---------------------------------------------------------------------------------- base class
class NetworkTokenizer(ABC):
    """Turns ``kind="network"`` graphs into :class:`TokenizedGraph`.

    A token is ``one_hot(op, V + 1) ‖ encode(raw node row)`` where the last one-hot slot is the
    unknown bucket. Subclasses declare ``name``, ``version``, the raw column names and how rows are
    extracted and encoded; everything that changes the numbers goes into :meth:`config`, hence into
    :meth:`fingerprint`.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    default_vocabulary: ClassVar[tuple[str, ...]] = ()
    node_columns: ClassVar[tuple[str, ...]] = ()
    graph_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, vocabulary: Sequence[str] | None = None) -> None:
        vocab = tuple(self.default_vocabulary if vocabulary is None else vocabulary)
        dup = sorted(op for op, c in Counter(vocab).items() if c > 1)
        if not vocab or dup or UNKNOWN_OP in vocab:
            raise InvalidInputError(
                f"vocabulary must be non-empty op types without duplicates or {UNKNOWN_OP!r}; "
                f"got {len(vocab)} entries, duplicates {dup}"
            )
        self.vocabulary = vocab
        self._slot = {op: i for i, op in enumerate(vocab)}

    # ------------------------------------------------------------------ subclass hooks
    def _params(self) -> dict[str, Any]:
        """Constructor arguments other than the vocabulary (JSON scalars)."""
        return {}

    @abstractmethod
    def _node_row(self, node: Node, in_degree: int, out_degree: int) -> list[float]:
        """Raw values of :attr:`node_columns` for one node (IR units, before any scaling)."""

    @abstractmethod
    def _encode_nodes(self, raw: np.ndarray) -> np.ndarray:
        """``[N, len(node_columns)]`` raw rows -> ``[N, d - V - 1]`` encoded features."""

    @abstractmethod
    def _graph_row(self, graph: NetGraph) -> list[float]:
        """Raw values of :attr:`graph_columns`."""

    @abstractmethod
    def _encode_graph(self, raw: np.ndarray) -> np.ndarray:
        """``[len(graph_columns)]`` raw values -> ``[g]`` graph features."""

    # ------------------------------------------------------------------ identity
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this tokenizer (see :meth:`from_config`); JSON-able."""
        return {"name": self.name, "version": self.version, "vocabulary": list(self.vocabulary), **self._params()}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "NetworkTokenizer":
        """Rebuild from :meth:`config`; refuses another name or version."""
        if cfg.get("name") != cls.name or cfg.get("version") != cls.version:
            raise InvalidInputError(
                f"tokenizer config is {cfg.get('name')!r} version {cfg.get('version')!r}; "
                f"this class is {cls.name!r} version {cls.version!r}"
            )
        kwargs = {k: v for k, v in cfg.items() if k not in ("name", "version")}
        return cls(**kwargs)

    def fingerprint(self) -> str:
        """16 hex chars of sha256 over name, version, vocabulary and parameters."""
        blob = json.dumps(self.config(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def token_dim(self) -> int:
        return len(self.vocabulary) + 1 + self._encode_nodes(np.zeros((1, len(self.node_columns)))).shape[1]

    @property
    def graph_dim(self) -> int:
        return int(self._encode_graph(np.zeros(len(self.graph_columns))).shape[0])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, version={self.version!r}, "
                f"d={self.token_dim}, fingerprint={self.fingerprint()!r})")

    # ------------------------------------------------------------------ encoding
    def _prepare(self, graph: NetGraph) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
        """Validate; return topological order, op slots, raw node table ``[N, C]``, edges ``[E, 2]``
        (original indices)."""
        if not isinstance(graph, NetGraph):
            raise InvalidInputError(f"{self.name} encodes NetGraph objects, got {type(graph).__name__}")
        if graph.kind != "network":
            raise InvalidInputError(
                f"tokenizer {self.name!r} encodes graphs of kind 'network', got kind {graph.kind!r} "
                "(use archcast.tokenizer.cell_arrays for cells)"
            )
        graph.validate()
        order = graph.topological_order()
        n = len(order)
        edges = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
        indeg = np.bincount(edges[:, 1], minlength=n)
        outdeg = np.bincount(edges[:, 0], minlength=n)
        unk = len(self.vocabulary)
        slots = np.fromiter((self._slot.get(graph.nodes[i].op_type, unk) for i in order), np.int64, n)
        raw = np.array(
            [self._node_row(graph.nodes[i], int(indeg[i]), int(outdeg[i])) for i in order], dtype=np.float64
        ).reshape(n, len(self.node_columns))
        return order, slots, raw, edges

    def encode(self, graph: NetGraph) -> TokenizedGraph:
        """Encode one network graph (validated first). Raises on non-finite features."""
        order, slots, raw, edges = self._prepare(graph)
        n, v = len(order), len(self.vocabulary) + 1
        one_hot = np.zeros((n, v), dtype=np.float32)
        one_hot[np.arange(n), slots] = 1.0
        tokens = np.concatenate([one_hot, self._encode_nodes(raw).astype(np.float32)], axis=1)
        pos = np.empty(n, dtype=np.int64)
        pos[np.asarray(order, dtype=np.int64)] = np.arange(n)
        fwd = np.stack([pos[edges[:, 0]], pos[edges[:, 1]]], axis=1) if len(edges) else np.zeros((0, 2), np.int64)
        adj = _dense(n, fwd, graph.name) if n <= DENSE_MAX_NODES else None
        gf = self._encode_graph(np.asarray(self._graph_row(graph), dtype=np.float64)).astype(np.float32)
        if not (np.isfinite(tokens).all() and np.isfinite(gf).all()):
            bad = np.flatnonzero(~np.isfinite(tokens).all(axis=1))
            where = f"node {graph.nodes[order[bad[0]]].name!r}" if bad.size else "graph features"
            raise InvalidInputError(
                f"tokenizer {self.name!r} produced non-finite values for {where} of graph {graph.name!r}"
            )
        op_types = [graph.nodes[i].op_type for i in order]
        unknown = Counter(t for t, s in zip(op_types, slots) if s == v - 1)
        return TokenizedGraph(
            tokens=tokens,
            adj=adj,
            graph_features=gf,
            op_types=op_types,
            unknown_ops=dict(sorted(unknown.items())),
            name=graph.name,
            fingerprint=self.fingerprint(),
            edges=fwd,
        )

    def encode_many(self, graphs: Iterable[NetGraph], progress: bool = False) -> list[TokenizedGraph]:
        """Encode graphs in order; ``progress`` shows a tqdm bar."""
        if progress:
            from tqdm.auto import tqdm  # only when asked: keeps import light

            graphs = tqdm(graphs, desc=f"tokenize ({self.name})", unit="graph")
        return [self.encode(g) for g in graphs]

    def explain(self, graph: NetGraph) -> str:
        """Show-your-work text: per node (token order) the op, its vocabulary slot, raw attributes
        and shapes, and the raw column values the token is encoded from; then graph features."""
        order, slots, raw, edges = self._prepare(graph)
        unk = len(self.vocabulary)
        lines = [
            f"{self.name} v{self.version} fingerprint={self.fingerprint()} | graph {graph.name!r}: "
            f"{len(order)} nodes, {len(edges)} edges -> tokens [{len(order)}, {self.token_dim}], "
            f"graph features [{self.graph_dim}]",
        ]
        for t, (i, s) in enumerate(zip(order, slots)):
            node = graph.nodes[i]
            slot = f"slot {s}" if s < unk else f"slot {s} (UNKNOWN: {node.op_type!r} not in vocabulary)"
            attrs = " ".join(f"{k}={v}" for k, v in sorted(node.attrs.items())) or "-"
            cols = " ".join(f"{c}={x:g}" for c, x in zip(self.node_columns, raw[t]))
            lines += [
                f"[{t}] {node.name} {node.op_type} -> {slot}",
                f"    attrs: {attrs}",
                f"    in {node.input_shapes} out {node.output_shapes} flops={node.flops} "
                f"params={node.params} memory_bytes={node.memory_bytes}",
                f"    raw: {cols}",
            ]
        graw = self._graph_row(graph)
        lines.append("graph raw: " + " ".join(f"{c}={x:g}" for c, x in zip(self.graph_columns, graw)))
        unknown = Counter(graph.nodes[i].op_type for i, s in zip(order, slots) if s == unk)
        lines.append(f"unknown ops: {dict(sorted(unknown.items())) or 'none'}")
        return "\n".join(lines)


TOKENIZERS: Registry[type[NetworkTokenizer]] = Registry("tokenizer")


def get_tokenizer(name: str, **params: Any) -> NetworkTokenizer:
    """A tokenizer instance by exact registry name; unknown names list the valid ones."""
    return TOKENIZERS.get(name)(**params)


# ---------------------------------------------------------------------------------- narformer-v2
NARFORMER_VOCABULARY: tuple[str, ...] = (
    "Conv", "Relu", "Add", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
    "Gemm", "MatMul", "Concat", "Flatten", "Reshape", "Transpose", "Clip", "Sigmoid", "HardSigmoid",
    "HardSwish", "Mul", "Softmax", "Dropout", "Pad", "Split", "Slice", "Gather", "ReduceMean",
    "LayerNormalization", "Squeeze", "Unsqueeze",
)  # fmt: skip


@TOKENIZERS.register("narformer-v2")
class NarFormerV2Tokenizer(NetworkTokenizer):
    """The reference tokenization (docs/design.md §2), 149 dims with the default vocabulary.

    Token = one-hot over 28 ops + 1 unknown slot (29) ‖ 8 attribute slots x ``sin_dim`` (80) ‖
    output shape N,C,H,W x ``sin_dim`` (40). Attribute slots keep only the *first element* of tuple
    attributes; absent attributes are 0; ``has_bias`` is inferred (see :func:`has_bias`).
    The output shape is the first output's, **left-aligned** (rank 2 ``[N, F]`` -> ``N, C=F, 0, 0``),
    zero-padded and truncated to 4 dims. Graph features: batch size (as is) and FLOPs, params and
    memory bytes (outputs + parameters) divided by ``graph_scale`` (1e9), each a sinusoid (40 dims).
    """

    name = "narformer-v2"
    version = "1"
    default_vocabulary = NARFORMER_VOCABULARY
    node_columns = ("kernel", "stride", "pad", "dilation", "group", "has_bias", "axis", "ceil_mode",
                    "N", "C", "H", "W")  # fmt: skip
    graph_columns = ("batch_size", "flops", "params", "memory_bytes")

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        sin_dim: int = 10,
        sin_base: float = 10000.0,
        graph_scale: float = 1e9,
    ) -> None:
        super().__init__(vocabulary)
        if sin_dim <= 0 or sin_dim % 2:
            raise InvalidInputError(f"sin_dim must be a positive even integer, got {sin_dim!r}")
        if not graph_scale > 0:
            raise InvalidInputError(f"graph_scale must be > 0, got {graph_scale!r}")
        self.sin_dim, self.sin_base, self.graph_scale = int(sin_dim), float(sin_base), float(graph_scale)

    def _params(self) -> dict[str, Any]:
        return {"sin_dim": self.sin_dim, "sin_base": self.sin_base, "graph_scale": self.graph_scale}

    def _node_row(self, node: Node, in_degree: int, out_degree: int) -> list[float]:
        a = node.attrs
        shape = [_num(d) for d in _shape0(node.output_shapes)[:4]]
        return [
            _first(a.get("kernel_shape")), _first(a.get("strides")), _first(a.get("pads")),
            _first(a.get("dilations")), _first(a.get("group")), has_bias(node), _first(a.get("axis")),
            _first(a.get("ceil_mode")), *shape, *[0.0] * (4 - len(shape)),
        ]  # fmt: skip

    def _encode_nodes(self, raw: np.ndarray) -> np.ndarray:
        return sinusoid(raw, self.sin_dim, self.sin_base).reshape(raw.shape[0], -1)

    def _graph_row(self, graph: NetGraph) -> list[float]:
        return [float(batch_size(graph)), _num(graph.flops), _num(graph.params), _num(graph.memory_bytes)]

    def _encode_graph(self, raw: np.ndarray) -> np.ndarray:
        # batch size is not divided: /1e9 would make it a constant code
        scaled = raw / np.array([1.0, self.graph_scale, self.graph_scale, self.graph_scale])
        return sinusoid(scaled, self.sin_dim, self.sin_base).reshape(-1)


# ---------------------------------------------------------------------------------- archcast-v1
ARCHCAST_VOCABULARY: tuple[str, ...] = (
    # compute-heavy
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum",
    # normalisation
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "LRN",
    # activations
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
    "Softplus", "Gelu", "Erf", "Clip", "Mish", "Softmax", "LogSoftmax",
    # elementwise arithmetic
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Sin", "Cos", "Neg", "Abs",
    "Reciprocal", "Max", "Min", "Floor", "Ceil", "Round", "Sign", "Tan", "Mod",
    # pooling and reductions
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "ReduceMean", "ReduceSum",
    "ReduceMax", "ReduceMin", "ReduceL2", "ReduceProd",
    # data movement
    "Concat", "Split", "Slice", "Gather", "GatherElements", "ScatterND", "Reshape", "Flatten",
    "Transpose", "Squeeze", "Unsqueeze", "Expand", "Tile", "Pad", "Resize", "Upsample",
    "DepthToSpace", "SpaceToDepth",
    # logic, shapes, misc
    "Where", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Not", "And", "Or", "Xor",
    "Cast", "Shape", "Size", "Constant", "ConstantOfShape", "Range", "Identity", "Dropout", "TopK",
    "ArgMax", "CumSum",
)  # fmt: skip

# Ops whose activations are laid out channel-first (N, C, ...) whatever their rank.
CHANNEL_FIRST_OPS = frozenset({
    "Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "GroupNormalization",
    "LRN", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "Resize", "Upsample",
    "DepthToSpace", "SpaceToDepth", "PRelu",
})  # fmt: skip

# Divisors that bring each log-scaled raw column to roughly [0, 1] (the value reaching 1 in a comment).
_V1_NODE_SCALE: dict[str, float] = {
    "kernel_h": 4.0, "kernel_w": 4.0,        # log2(1+15)
    "stride_h": 3.0, "stride_w": 3.0,        # log2(1+7)
    "pad_begin": 4.0, "pad_total": 5.0,      # log2(1+15), log2(1+31)
    "dilation": 3.0, "group": 10.0,          # log2(1+7), log2(1+1023)
    "has_bias": 1.0, "axis": 2.0,            # flag; signed log2 of axis in [-3, 3]
    "c_in": 12.0, "c_out": 12.0,             # log2(1+4095)
    "rank": 6.0, "numel": 30.0,              # rank 6; log2(1e9)
    "d0": 12.0, "d1": 12.0, "d2": 12.0, "d3": 12.0,  # log2(1+4095)
    "flops": 10.0, "params": 8.0, "memory_bytes": 10.0,  # log10: 10 GFLOP, 100 M params, 10 GB
    "in_degree": 4.0, "out_degree": 4.0,     # log2(1+15)
}  # fmt: skip
_V1_LOG10 = ("flops", "params", "memory_bytes")
# Columns that also get a sinusoid of their (unscaled) log value: magnitudes, not flags/degrees.
_V1_SIN = ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_begin", "pad_total", "dilation", "group",
           "c_in", "c_out", "d0", "d1", "d2", "d3", "flops", "params", "memory_bytes")  # fmt: skip
_V1_GRAPH_SCALE: dict[str, float] = {
    "batch_size": 3.0, "flops": 12.0, "params": 9.0, "memory_bytes": 11.0, "n_nodes": 4.0,  # log10
}  # fmt: skip


def _split_hw(v: Any) -> tuple[float, float]:
    """A spatial tuple as (h, w): leading dims folded into h (3-D keeps its volume); absent -> 0."""
    xs = _ints(v)
    if not xs:
        return 0.0, 0.0
    return float(math.prod(xs[:-1])) if len(xs) > 1 else 1.0, xs[-1]


@TOKENIZERS.register("archcast-v1")
class ArchcastV1Tokenizer(NetworkTokenizer):
    """The improved default tokenization, 223 dims with the default vocabulary (97 ops + unknown).

    Token = one-hot (98) ‖ 23 raw columns on log scales, each divided by a fixed scale to reach
    ~[0, 1] ‖ a ``sin_dim`` sinusoid of the unscaled log value of 17 magnitude columns (102).

    Raw columns (IR units before the log): kernel h/w, stride h/w (leading spatial dims folded into
    h), pad begin sum and total sum, dilation (max), group, has_bias, axis (signed log), channels in/out
    (dim 1 for channel-first ops or rank >= 4, else the last dim), output rank (linear) and element
    count, the last 4 output dims right-aligned (``[N, F]`` -> ``0, 0, N, F``), flops / params /
    memory_bytes (log10), in/out degree. Graph features: log10(1 + x) of batch size, FLOPs, params,
    memory bytes and node count, scaled ‖ their sinusoids (5 + 5 * ``sin_dim`` = 35).
    """

    name = "archcast-v1"
    version = "1"
    default_vocabulary = ARCHCAST_VOCABULARY
    node_columns = tuple(_V1_NODE_SCALE)
    graph_columns = tuple(_V1_GRAPH_SCALE)

    def __init__(self, vocabulary: Sequence[str] | None = None, sin_dim: int = 6, sin_base: float = 100.0) -> None:
        super().__init__(vocabulary)
        if sin_dim < 0 or sin_dim % 2:
            raise InvalidInputError(f"sin_dim must be a non-negative even integer, got {sin_dim!r}")
        self.sin_dim, self.sin_base = int(sin_dim), float(sin_base)
        cols = self.node_columns
        self._log10 = np.array([c in _V1_LOG10 for c in cols])
        self._linear = np.array([c == "rank" for c in cols])
        self._scale = np.array([_V1_NODE_SCALE[c] for c in cols])
        self._sin_idx = np.array([cols.index(c) for c in _V1_SIN])
        self._gscale = np.array(list(_V1_GRAPH_SCALE.values()))

    def _params(self) -> dict[str, Any]:
        # scales and column lists are constants of this version; bump `version` when they change
        return {"sin_dim": self.sin_dim, "sin_base": self.sin_base}

    def _node_row(self, node: Node, in_degree: int, out_degree: int) -> list[float]:
        a = node.attrs
        kh, kw = _split_hw(a.get("kernel_shape"))
        sh, sw = _split_hw(a.get("strides"))
        pads = _ints(a.get("pads"))
        x, y = _shape0(node.input_shapes), _shape0(node.output_shapes)
        cf = node.op_type in CHANNEL_FIRST_OPS

        def channels(s: tuple[int, ...]) -> float:
            return 0.0 if not s else _num(s[1] if len(s) > 1 and (cf or len(s) >= 4) else s[-1])

        last4 = [_num(d) for d in y[-4:]]
        return [
            kh, kw, sh, sw, sum(pads[: len(pads) // 2]), sum(pads),
            max(_ints(a.get("dilations")), default=0.0), _first(a.get("group")), has_bias(node),
            _first(a.get("axis")), channels(x), channels(y), float(len(y)), _num(math.prod(y)) if y else 0.0,
            *[0.0] * (4 - len(last4)), *last4,
            _num(node.flops), _num(node.params), _num(node.memory_bytes), float(in_degree), float(out_degree),
        ]  # fmt: skip

    def _logs(self, raw: np.ndarray) -> np.ndarray:
        """Raw table -> per-column log values (log10 for costs, linear rank, signed log2 otherwise)."""
        return np.where(self._linear, raw, np.where(self._log10, np.log10(1.0 + np.abs(raw)), _signed_log2(raw)))

    def _encode_nodes(self, raw: np.ndarray) -> np.ndarray:
        logs = self._logs(raw)
        parts = [logs / self._scale]
        if self.sin_dim:
            parts.append(sinusoid(logs[:, self._sin_idx], self.sin_dim, self.sin_base).reshape(raw.shape[0], -1))
        return np.concatenate(parts, axis=1)

    def _graph_row(self, graph: NetGraph) -> list[float]:
        return [float(batch_size(graph)), _num(graph.flops), _num(graph.params), _num(graph.memory_bytes),
                float(len(graph.nodes))]  # fmt: skip

    def _encode_graph(self, raw: np.ndarray) -> np.ndarray:
        logs = np.log10(1.0 + np.abs(raw))
        parts = [logs / self._gscale]
        if self.sin_dim:
            parts.append(sinusoid(logs, self.sin_dim, self.sin_base).reshape(-1))
        return np.concatenate(parts)
