"""NetGraph: archcast's one typed intermediate representation of a network.

A graph is a list of operator nodes and directed edges ``(src, dst)`` between node indices.
Two kinds exist:

* ``"network"``: a whole network read from ONNX / torch. Every node carries a canonical op type
  (the ONNX op name, e.g. ``"Conv"``), its attributes (tuples kept whole), input and output shapes,
  and its cost: ``flops`` (a multiply-add counts 2), ``params`` (parameter elements folded into the
  operator: weights, biases, BN statistics) and ``memory_bytes`` (bytes of outputs + parameters).
* ``"cell"``: a NAS cell (NAS-Bench-201/101, NAS-Bench-Graph) as an operator graph: op types are
  the search space's op names (``meta["space"]`` says which space); shapes and costs may be empty.

Frontends build graphs and call :meth:`NetGraph.validate`. The :meth:`NetGraph.fingerprint` does
not depend on node names nor on the order in which nodes are listed.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

from archcast.errors import GraphValidationError

Scalar = Union[int, float, str]
AttrValue = Union[Scalar, tuple]  # tuples hold scalars (or nested tuples), never lists

GRAPH_KINDS = ("network", "cell")
IR_VERSION = 1


def _canon_attr(value: Any) -> AttrValue:
    """Lists become tuples (recursively); numpy scalars become Python scalars; bytes decode."""
    if isinstance(value, (list, tuple)):
        return tuple(_canon_attr(v) for v in value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "item") and not isinstance(value, (int, float, str)):
        return value.item()  # numpy scalar
    if isinstance(value, (int, float, str)):
        return value
    raise GraphValidationError(f"attribute value {value!r} of type {type(value).__name__} is not int/float/str/tuple")


def _shape(s: Iterable[Any]) -> tuple[int, ...]:
    return tuple(int(d) for d in s)


@dataclass
class Node:
    """One operator.

    Attributes:
        name: free-form name (ignored by the fingerprint).
        op_type: canonical operator type (ONNX op name for networks, space op name for cells).
        attrs: operator attributes, tuples kept whole (e.g. ``kernel_shape=(3, 3)``).
        input_shapes: shapes of the activation inputs (parameters are not listed here).
        output_shapes: shapes of the outputs.
        flops: floating-point operations, a multiply-add counted as 2.
        params: parameter elements folded into this operator.
        memory_bytes: bytes written (outputs) + bytes of parameters read.
    """

    name: str
    op_type: str
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    flops: int = 0
    params: int = 0
    memory_bytes: int = 0

    def __post_init__(self) -> None:
        self.attrs = {str(k): _canon_attr(v) for k, v in self.attrs.items()}
        self.input_shapes = [_shape(s) for s in self.input_shapes]
        self.output_shapes = [_shape(s) for s in self.output_shapes]

    def label(self) -> str:
        """Name-free description used by the fingerprint."""
        return json.dumps(
            [self.op_type, sorted(self.attrs.items()), self.input_shapes, self.output_shapes],
            separators=(",", ":"),
            default=list,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "attrs": {k: _jsonable(v) for k, v in self.attrs.items()},
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shapes": [list(s) for s in self.output_shapes],
            "flops": int(self.flops),
            "params": int(self.params),
            "memory_bytes": int(self.memory_bytes),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "node") -> "Node":
        """Build from :meth:`to_dict` output, checking every field (raises GraphValidationError)."""
        fast = _fast_node_fields(d)
        if fast is not None:
            return cls(**fast)
        if not isinstance(d, dict):
            raise GraphValidationError(f"{where} must be a JSON object, got {_kind(d)}")
        _no_extra(d, ("name", "op_type", "attrs", "input_shapes", "output_shapes", "flops", "params",
                      "memory_bytes"), where)
        name = d.get("name", "")
        if not isinstance(name, str):
            raise GraphValidationError(f"{where}: 'name' must be a string, got {_kind(name)}")
        if "op_type" not in d:
            raise GraphValidationError(f"{where} has no 'op_type'")
        op_type = d["op_type"]
        if not isinstance(op_type, str) or not op_type:
            raise GraphValidationError(f"{where}: 'op_type' must be a non-empty string, got {_kind(op_type)}")
        attrs = d.get("attrs", {})
        if not isinstance(attrs, dict):
            raise GraphValidationError(f"{where}: 'attrs' must be an object of name -> value, got {_kind(attrs)}")
        return cls(
            name=name,
            op_type=op_type,
            attrs={str(k): _checked_attr(v, f"{where} attribute {str(k)[:40]!r}") for k, v in attrs.items()},
            input_shapes=_checked_shapes(d.get("input_shapes", []), f"{where} 'input_shapes'"),
            output_shapes=_checked_shapes(d.get("output_shapes", []), f"{where} 'output_shapes'"),
            flops=_checked_count(d.get("flops", 0), f"{where} 'flops'"),
            params=_checked_count(d.get("params", 0), f"{where} 'params'"),
            memory_bytes=_checked_count(d.get("memory_bytes", 0), f"{where} 'memory_bytes'"),
        )


# ---------------------------------------------------------------------------- JSON field checks
_NODE_KEYS = frozenset(("name", "op_type", "attrs", "input_shapes", "output_shapes", "flops", "params", "memory_bytes"))


def _fast_shape_list(v: Any) -> bool:
    return type(v) is list and all(
        type(s) is list and len(s) <= 64 and all(type(x) is int and 0 <= x <= MAX_DIM for x in s) for s in v)


def _fast_attr(v: Any) -> bool:
    t = type(v)
    if t is str or (t is int and -MAX_COUNT <= v <= MAX_COUNT) or (t is float and math.isfinite(v)):
        return True
    return t is list and all(type(x) is int and -MAX_COUNT <= x <= MAX_COUNT for x in v)


def _fast_node_fields(d: Any) -> dict[str, Any] | None:
    """Constructor arguments when ``d`` is plainly well-formed (the common case, no message
    formatting), else None: the checked path then names what is wrong."""
    if type(d) is not dict or not _NODE_KEYS.issuperset(d):
        return None
    name, op_type, attrs = d.get("name", ""), d.get("op_type"), d.get("attrs", {})
    if type(name) is not str or type(op_type) is not str or not op_type or type(attrs) is not dict:
        return None
    if not all(type(k) is str and _fast_attr(v) for k, v in attrs.items()):
        return None
    ins, outs = d.get("input_shapes", []), d.get("output_shapes", [])
    if not (_fast_shape_list(ins) and _fast_shape_list(outs)):
        return None
    counts = [d.get(k, 0) for k in ("flops", "params", "memory_bytes")]
    if not all(type(c) is int and 0 <= c <= MAX_COUNT for c in counts):
        return None
    return {"name": name, "op_type": op_type, "attrs": attrs, "input_shapes": ins, "output_shapes": outs,
            "flops": counts[0], "params": counts[1], "memory_bytes": counts[2]}


MAX_DIM = 1 << 62  # a dimension past this is corrupt input, not a network
MAX_COUNT = 1 << 80  # flops/params/bytes: far beyond any real network, still exact in JSON
MAX_ATTR_DEPTH = 4


def np_bool_types() -> tuple[type, ...]:
    """numpy's bool type when numpy is loaded (the IR does not import numpy itself)."""
    import sys

    np = sys.modules.get("numpy")
    return (np.bool_,) if np is not None else ()


def _kind(v: Any) -> str:
    text = repr(v)
    return f"{type(v).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _no_extra(d: dict, allowed: tuple[str, ...], where: str) -> None:
    extra = sorted(str(k) for k in d if k not in allowed)
    if extra:
        raise GraphValidationError(f"{where} has unknown key {extra[0][:40]!r}; allowed: {', '.join(allowed)}")


def _is_int(v: Any) -> bool:
    if type(v) is int:  # the common case, fast
        return True
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, *np_bool_types()))


def _checked_count(v: Any, where: str) -> int:
    if not _is_int(v) or not 0 <= v <= MAX_COUNT:
        raise GraphValidationError(f"{where} must be an integer in 0..2^80, got {_kind(v)}")
    return v


def _checked_shape(s: Any, where: str) -> tuple[int, ...]:
    if type(s) is list and len(s) <= 64 and all(type(d) is int and 0 <= d <= MAX_DIM for d in s):
        return tuple(s)  # fast path: what to_dict writes
    if not isinstance(s, (list, tuple)) or len(s) > 64:
        raise GraphValidationError(f"{where} must be a list of at most 64 integers, got {_kind(s)}")
    for d in s:
        if not _is_int(d) or not 0 <= d <= MAX_DIM:
            raise GraphValidationError(f"{where} holds dimension {_kind(d)}; dimensions are integers in 0..2^62")
    return tuple(s)


def _checked_shapes(v: Any, where: str) -> list[tuple[int, ...]]:
    if not isinstance(v, (list, tuple)):
        raise GraphValidationError(f"{where} must be a list of shapes, got {_kind(v)}")
    return [_checked_shape(s, where) for s in v]


def _checked_attr(v: Any, where: str, depth: int = 0) -> AttrValue:
    t = type(v)
    if t is str or (t is int and -MAX_COUNT <= v <= MAX_COUNT) or (t is float and math.isfinite(v)):
        return v
    if t is list and all(type(x) is int and -MAX_COUNT <= x <= MAX_COUNT for x in v):
        return tuple(v)  # fast path: kernel_shape, pads, strides...
    if isinstance(v, (list, tuple)):
        if depth >= MAX_ATTR_DEPTH:
            raise GraphValidationError(f"{where} nests lists deeper than {MAX_ATTR_DEPTH}")
        return tuple(_checked_attr(x, where, depth + 1) for x in v)
    if isinstance(v, bool):
        return int(v)
    if _is_int(v):
        if abs(v) > MAX_COUNT:
            raise GraphValidationError(f"{where} is {_kind(v)}, out of range")
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise GraphValidationError(f"{where} is {v!r}; attribute numbers must be finite")
        return v
    if isinstance(v, str):
        return v
    raise GraphValidationError(f"{where} must be a number, a string or a list of them, got {_kind(v)}")


def _checked_meta(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise GraphValidationError(f"graph JSON 'meta' must be an object, got {_kind(v)}")
    out: dict[str, Any] = {}
    for k, x in v.items():
        where = f"graph JSON meta {str(k)[:40]!r}"
        if x is None or isinstance(x, (str, bool)):
            out[str(k)] = x
        elif _is_int(x) or isinstance(x, float):
            out[str(k)] = _checked_attr(x, where)
        else:
            raise GraphValidationError(f"{where} must be a JSON scalar, got {_kind(x)}")
    if "batch_size" in out:
        b = out["batch_size"]
        if not _is_int(b) or not 1 <= b <= MAX_DIM:
            raise GraphValidationError(f"graph JSON meta 'batch_size' must be a positive integer, got {_kind(b)}")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number archcast accepts")


def _jsonable(v: AttrValue) -> Any:
    return [_jsonable(x) for x in v] if isinstance(v, tuple) else v


@dataclass
class NetGraph:
    """A network or cell as typed operator nodes plus directed edges ``(src, dst)``.

    ``inputs`` maps graph-input names to shapes; ``meta`` holds provenance (``source``, ``space``,
    ``family``, ``batch_size``...), JSON scalars only.
    """

    nodes: list[Node]
    edges: list[tuple[int, int]]
    name: str = ""
    kind: str = "network"
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.edges = [(int(a), int(b)) for a, b in self.edges]
        self.inputs = {str(k): _shape(v) for k, v in self.inputs.items()}

    # ------------------------------------------------------------------ invariants
    def validate(self) -> "NetGraph":
        """Check invariants; raise :class:`GraphValidationError` quoting the bad value. Returns self."""
        where = f"graph {self.name!r}" if self.name else "graph"
        if self.kind not in GRAPH_KINDS:
            raise GraphValidationError(f"{where}: kind {self.kind!r} is not one of {GRAPH_KINDS}")
        if not self.nodes:
            raise GraphValidationError(f"{where} is empty: it has no operator nodes")
        n = len(self.nodes)
        seen: set[tuple[int, int]] = set()
        for e in self.edges:
            a, b = e
            if not (0 <= a < n and 0 <= b < n):
                raise GraphValidationError(f"{where}: edge {e} refers to a node outside 0..{n - 1}")
            if a == b:
                raise GraphValidationError(f"{where}: edge {e} is a self loop on node {self.nodes[a].name!r}")
            if e in seen:
                raise GraphValidationError(f"{where}: edge {e} is listed twice")
            seen.add(e)
        for i, node in enumerate(self.nodes):
            if not node.op_type:
                raise GraphValidationError(f"{where}: node {i} ({node.name!r}) has an empty op_type")
            if self.kind == "network":
                if not node.output_shapes:
                    raise GraphValidationError(
                        f"{where}: node {i} ({node.name!r}, {node.op_type}) has no output shape"
                    )
                for s in node.output_shapes:
                    if any(d < 0 for d in s):
                        raise GraphValidationError(
                            f"{where}: node {i} ({node.name!r}, {node.op_type}) has output shape {s} with a negative or unknown dimension"
                        )
            for k in ("flops", "params", "memory_bytes"):
                v = getattr(node, k)
                if not _is_int(v) or v < 0:
                    raise GraphValidationError(f"{where}: node {i} ({node.name!r}) has {k}={v!r}; a count >= 0 is needed")
        order = self._kahn()
        if len(order) != n:
            stuck = sorted(set(range(n)) - set(order))
            names = ", ".join(repr(self.nodes[i].name) for i in stuck[:5])
            raise GraphValidationError(f"{where} has a cycle through nodes {names}")
        return self

    def _kahn(self) -> list[int]:
        n = len(self.nodes)
        indeg = [0] * n
        succ: list[list[int]] = [[] for _ in range(n)]
        for a, b in self.edges:
            indeg[b] += 1
            succ[a].append(b)
        heap = [i for i in range(n) if indeg[i] == 0]
        heapq.heapify(heap)
        order: list[int] = []
        while heap:
            i = heapq.heappop(heap)
            order.append(i)
            for j in succ[i]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    heapq.heappush(heap, j)
        return order

    def topological_order(self) -> list[int]:
        """Node indices in a topological order (ties broken by listing order: deterministic)."""
        order = self._kahn()
        if len(order) != len(self.nodes):
            raise GraphValidationError(f"graph {self.name!r} has a cycle")
        return order

    def topologically_sorted(self) -> "NetGraph":
        """A copy whose nodes are listed in topological order (edges renumbered)."""
        order = self.topological_order()
        pos = {old: new for new, old in enumerate(order)}
        return NetGraph(
            nodes=[self.nodes[i] for i in order],
            edges=sorted((pos[a], pos[b]) for a, b in self.edges),
            name=self.name,
            kind=self.kind,
            inputs=dict(self.inputs),
            meta=dict(self.meta),
        )

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def flops(self) -> int:
        return sum(n.flops for n in self.nodes)

    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def memory_bytes(self) -> int:
        return sum(n.memory_bytes for n in self.nodes)

    def op_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.op_type] = out.get(n.op_type, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def predecessors(self) -> list[list[int]]:
        pred: list[list[int]] = [[] for _ in self.nodes]
        for a, b in self.edges:
            pred[b].append(a)
        return pred

    def successors(self) -> list[list[int]]:
        succ: list[list[int]] = [[] for _ in self.nodes]
        for a, b in self.edges:
            succ[a].append(b)
        return succ

    # ------------------------------------------------------------------ identity
    def fingerprint(self, rounds: int = 3) -> str:
        """Hex digest invariant to node names and listing order (Weisfeiler-Lehman over labels).

        Direction matters: each round hashes a node's label with the sorted labels of its
        predecessors and of its successors separately. ``kind`` and ``meta["space"]`` are included.
        """
        labels = [hashlib.sha256(n.label().encode()).hexdigest() for n in self.nodes]
        pred, succ = self.predecessors(), self.successors()
        history = [sorted(labels)]
        for _ in range(rounds):
            labels = [
                hashlib.sha256(
                    (labels[i] + "|" + ",".join(sorted(labels[j] for j in pred[i]))
                     + "|" + ",".join(sorted(labels[j] for j in succ[i]))).encode()
                ).hexdigest()
                for i in range(len(self.nodes))
            ]
            history.append(sorted(labels))
        h = hashlib.sha256()
        h.update(f"{self.kind}|{self.meta.get('space', '')}|{len(self.nodes)}|{len(self.edges)}".encode())
        for hist in history:
            h.update(",".join(hist).encode())
        return h.hexdigest()[:32]

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "ir_version": IR_VERSION,
            "name": self.name,
            "kind": self.kind,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "meta": dict(self.meta),
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [list(e) for e in self.edges],
        }

    @classmethod
    def from_dict(cls, d: Any) -> "NetGraph":
        """Build from :meth:`to_dict` output; every field is checked (``GraphValidationError`` naming
        the bad field and value). Call :meth:`validate` for the graph invariants."""
        if not isinstance(d, dict):
            raise GraphValidationError(f"graph JSON must be an object, got {_kind(d)}")
        _no_extra(d, ("ir_version", "name", "kind", "inputs", "meta", "nodes", "edges"), "graph JSON")
        if d.get("ir_version", IR_VERSION) != IR_VERSION or isinstance(d.get("ir_version"), bool):
            raise GraphValidationError(
                f"graph JSON has ir_version {_kind(d.get('ir_version'))}; this archcast reads {IR_VERSION}"
            )
        for key in ("nodes", "edges"):
            if key not in d:
                raise GraphValidationError(f"graph JSON has no {key!r} list")
            if not isinstance(d[key], list):
                raise GraphValidationError(f"graph JSON {key!r} must be a list, got {_kind(d[key])}")
        name, kind = d.get("name", ""), d.get("kind", "network")
        if not isinstance(name, str):
            raise GraphValidationError(f"graph JSON 'name' must be a string, got {_kind(name)}")
        if kind not in GRAPH_KINDS:
            raise GraphValidationError(f"graph JSON 'kind' is {_kind(kind)}; allowed: {', '.join(GRAPH_KINDS)}")
        inputs = d.get("inputs", {})
        if not isinstance(inputs, dict):
            raise GraphValidationError(f"graph JSON 'inputs' must be an object of name -> shape, got {_kind(inputs)}")
        edges = d["edges"]
        if not all(type(e) is list and len(e) == 2 and type(e[0]) is int and type(e[1]) is int for e in edges):
            for e in edges:
                if not (isinstance(e, (list, tuple)) and len(e) == 2 and all(_is_int(x) for x in e)):
                    raise GraphValidationError(f"graph JSON edge {_kind(e)} must be a pair of node indices [src, dst]")
        return cls(
            nodes=[Node.from_dict(n, f"graph JSON node {i}") for i, n in enumerate(d["nodes"])],
            edges=edges,
            name=name,
            kind=kind,
            inputs={str(k): _checked_shape(v, f"graph JSON input {str(k)[:40]!r}") for k, v in inputs.items()},
            meta=_checked_meta(d.get("meta", {})),
        )

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> "NetGraph":
        """Parse :meth:`to_json` output (see :meth:`from_dict`); NaN/Infinity literals are refused."""
        if not isinstance(text, (str, bytes, bytearray)):
            raise GraphValidationError(f"graph JSON must be text, got {type(text).__name__}")
        try:
            d = json.loads(text, parse_constant=_no_constant)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as e:
            reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
            raise GraphValidationError(f"graph JSON is not valid JSON: {reason}") from None
        return cls.from_dict(d)

    def summary(self) -> dict[str, Any]:
        """Counts and totals for display (``archcast inspect``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "nodes": len(self.nodes),
            "edges": len(self.edges),
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "flops": self.flops,
            "params": self.params,
            "memory_bytes": self.memory_bytes,
            "op_counts": self.op_counts(),
            "fingerprint": self.fingerprint(),
        }
