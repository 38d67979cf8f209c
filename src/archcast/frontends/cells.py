"""NAS cell specs -> ``kind="cell"`` :class:`~archcast.graph.NetGraph` (NB201, NB101, NAS-Bench-Graph).

NAS-Bench-201 cells have 4 feature nodes (0 = input, 3 = output) and 6 edges ``j <- i`` (i < j), each
carrying one op; node ``j`` is the sum of its incoming edge-ops. Two spellings exist:

* the NB201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: edges in the order
  ``(1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2)`` ("string order");
* the AnalogNAS-Bench tuple of 6 op ints (0 skip_connect, 1 none, 2 nor_conv_3x3, 3 nor_conv_1x1,
  4 avg_pool_3x3) with edges ``(1<-0), (2<-0), (3<-0), (2<-1), (3<-1), (3<-2)``: positions 2 and 3
  are swapped against the string order.

As an op graph (the NAR-Former V2 reference view) every edge-op becomes a node: 8 nodes
``[input, the six edge-ops in string order, output]``; "none" ops are kept as nodes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph, Node
from archcast.graph.spaces import NASBENCH_GRAPH, NB101, NB201

# ---------------------------------------------------------------------------- NAS-Bench-201
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""``(dst, src)`` of the six edges in NB201 string order."""
NB201_TUPLE_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))
"""``(dst, src)`` of the six positions of an AnalogNAS-Bench tuple."""
NB201_TUPLE_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
"""Op name of each AnalogNAS-Bench op int."""

_OP_INT = {op: i for i, op in enumerate(NB201_TUPLE_OPS)}
_TUPLE_POS = {e: k for k, e in enumerate(NB201_TUPLE_EDGES)}
_STR_TO_TUPLE = [_TUPLE_POS[e] for e in NB201_EDGES]  # string position k -> tuple position
_NB201_FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
_VALID_NB201 = ", ".join(NB201.ops)


def _q(value: object, n: int = 80) -> str:
    """``repr`` of a user value for messages, cut to ``n`` characters (cell strings can be huge)."""
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _format_nb201(ops: Sequence[str]) -> str:
    """Six op names in string order -> canonical NB201 string."""
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


def _parse_nb201(arch: str) -> tuple[str, ...]:
    """NB201 string -> six op names in string order. Raises :class:`InvalidInputError`."""
    if not isinstance(arch, str):
        raise InvalidInputError(f"NB201 arch must be a string or a 6-int tuple; got {type(arch).__name__} {repr(arch)[:80]}")
    s = arch.strip()
    parts = s.split("+")
    tokens: list[tuple[int, str]] = []  # (node, token)
    for node, part in enumerate(parts, start=1):
        if len(part) < 2 or not (part.startswith("|") and part.endswith("|")):
            raise InvalidInputError(
                f"malformed NB201 arch {_q(arch)}: node group {_q(part)} must look like |op~0|op~1|; format: {_NB201_FORMAT}"
            )
        tokens += [(node, t) for t in part[1:-1].split("|")]
    if len(tokens) != 6 or len(parts) != 3:
        raise InvalidInputError(
            f"NB201 arch {_q(arch)} has {len(tokens)} edges in {len(parts)} node groups; 6 edges in 3 groups (1+2+3) are needed: {_NB201_FORMAT}"
        )
    sizes = tuple(len(p[1:-1].split("|")) for p in parts)
    if sizes != (1, 2, 3):
        raise InvalidInputError(
            f"malformed NB201 arch {_q(arch)}: node groups hold {sizes} edges; node j reads j sources (1, 2, 3): {_NB201_FORMAT}"
        )
    ops: list[str] = []
    seen = {1: 0, 2: 0, 3: 0}
    for node, tok in tokens:
        op, sep, idx = tok.rpartition("~")
        if not sep or not op or not (idx.isascii() and idx.isdigit()) or len(idx) > 3:
            raise InvalidInputError(f"malformed NB201 edge {_q(tok)} in {_q(arch)}: expected op~source (e.g. nor_conv_3x3~0)")
        if op not in NB201.ops:
            raise InvalidInputError(f"unknown NB201 op {_q(op)} in {_q(arch)}; valid: {_VALID_NB201}")
        if int(idx) != seen[node]:
            raise InvalidInputError(
                f"bad node index in NB201 edge {_q(tok)} of {_q(arch)}: node {node} must read sources 0..{node - 1} in order, expected ~{seen[node]}"
            )
        seen[node] += 1
        ops.append(op)
    return tuple(ops)


def _tuple_ops(arch: Sequence[int]) -> tuple[str, ...]:
    """AnalogNAS tuple -> six op names in string order."""
    if not isinstance(arch, (Sequence, np.ndarray)):
        raise InvalidInputError(f"NB201 arch must be a string or a 6-int tuple; got {type(arch).__name__} {repr(arch)[:80]}")
    vals = list(arch)
    if len(vals) != 6:
        raise InvalidInputError(f"NB201 tuple {repr(tuple(vals))[:80]} has {len(vals)} edges; 6 op ints are needed")
    ints: list[int] = []
    for v in vals:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < 5:
            allowed = ", ".join(f"{i} {op}" for i, op in enumerate(NB201_TUPLE_OPS))
            raise InvalidInputError(f"NB201 tuple {tuple(vals)!r} holds {v!r}; op ints are {allowed}")
        ints.append(int(v))
    return tuple(NB201_TUPLE_OPS[ints[_STR_TO_TUPLE[k]]] for k in range(6))


def _ops_of(arch: str | Sequence[int]) -> tuple[str, ...]:
    return _parse_nb201(arch) if isinstance(arch, str) else _tuple_ops(arch)


def nb201_string(arch: str | Sequence[int]) -> str:
    """Canonical NB201 string of a cell given as an AnalogNAS tuple (or a string, normalised)."""
    return _format_nb201(_ops_of(arch))


def nb201_tuple(arch: str | Sequence[int]) -> tuple[int, ...]:
    """AnalogNAS-Bench tuple (6 op ints, tuple edge order) of a cell given as an NB201 string."""
    ops = _ops_of(arch)
    by_edge = dict(zip(NB201_EDGES, ops))
    return tuple(_OP_INT[by_edge[e]] for e in NB201_TUPLE_EDGES)


def nb201_graph(arch: str | Sequence[int]) -> NetGraph:
    """The op graph of an NB201 cell: 8 nodes ``[input, 6 edge-ops (string order), output]``.

    Edge-op ``(j<-i)`` reads the input node when ``i == 0``, else every edge-op whose dst is ``i``;
    the output node reads every edge-op whose dst is 3. Edge-op nodes carry ``attrs["edge"] = (dst,
    src)``. ``meta = {"space": "nb201", "arch": <canonical string>}``.
    """
    ops = _ops_of(arch)
    s = _format_nb201(ops)
    nodes = [Node("input", "input")]
    nodes += [Node(f"{op}~{src}->{dst}", op, {"edge": (dst, src)}) for op, (dst, src) in zip(ops, NB201_EDGES)]
    nodes.append(Node("output", "output"))
    edges: list[tuple[int, int]] = []
    for k, (dst, src) in enumerate(NB201_EDGES, start=1):
        if src == 0:
            edges.append((0, k))
        else:
            edges += [(m, k) for m, (d, _) in enumerate(NB201_EDGES, start=1) if d == src]
    edges += [(m, 7) for m, (d, _) in enumerate(NB201_EDGES, start=1) if d == 3]
    return NetGraph(nodes, edges, name=s, kind="cell", meta={"space": "nb201", "arch": s}).validate()


def nb201_relabel(arch: str | Sequence[int]) -> str:
    """The cell with inner feature nodes 1 and 2 swapped (an isomorphic copy), as a canonical string.

    Swapping relabels edges ``1<-0 <-> 2<-0`` and ``3<-1 <-> 3<-2`` and keeps ``3<-0``. It is a
    valid relabelling only when edge ``2<-1`` is ``none`` (otherwise node 2 reads node 1 and the
    order 1 < 2 is forced); then the result computes the same function and the map is an
    involution. For cells whose ``2<-1`` op is not ``none`` the cell itself is returned. The op
    graphs of the two cells are isomorphic only once ``none`` nodes are dropped (the kept ``none``
    node of edge ``2<-1`` changes neighbours).
    """
    o = _ops_of(arch)  # string order: 10 20 21 30 31 32
    if o[2] != "none":
        return _format_nb201(o)
    return _format_nb201((o[1], o[0], "none", o[3], o[5], o[4]))


_NB201_NO_PATH = _format_nb201(("none",) * 6)


def nb201_iso_key(arch: str | Sequence[int]) -> str:
    """A key shared by NB201 cells that compute the same function (up to weights).

    Rules: drop ``none`` edges (they output zeros); drop edges out of nodes unreachable from the
    input (they carry no input information) and edges into nodes that cannot reach the output; then
    take the lexicographically smaller string over the node-1/node-2 swap when no ``2<-1`` edge
    remains. ``skip_connect`` is an identity edge and stays; ``avg_pool_3x3`` and convs are not
    identities. The key is itself a canonical NB201 string with pruned edges spelled ``none``; all
    cells without an input->output path share ``|none~0|+|none~0|none~1|+|none~0|none~1|none~2|``.
    """
    ops = list(_ops_of(arch))
    live = {e for e, op in zip(NB201_EDGES, ops) if op != "none"}
    fwd = {0}
    for j in (1, 2, 3):
        if any((j, i) in live for i in fwd):
            fwd.add(j)
    if 3 not in fwd:
        return _NB201_NO_PATH
    back = {3}
    for i in (2, 1, 0):
        if any((j, i) in live for j in back):
            back.add(i)
    kept = [op if (e in live and e[1] in fwd and e[0] in back) else "none" for e, op in zip(NB201_EDGES, ops)]
    key = _format_nb201(kept)
    return min(key, nb201_relabel(key)) if kept[2] == "none" else key


# ---------------------------------------------------------------------------- NAS-Bench-101
NB101_MAX_NODES = 7
NB101_MAX_EDGES = 9


def nb101_graph(matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> NetGraph:
    """A NAS-Bench-101 cell (upper-triangular 0/1 adjacency, ops ``['input', ..., 'output']``).

    Nodes are the ops in the given order, edges ``i -> j`` where ``matrix[i][j] == 1``. Like NB101's
    ``ModelSpec``, nodes not on an input->output path are pruned first; the 7-node / 9-edge limits
    are checked on the pruned cell. ``meta = {"space": "nb101", "arch": <bits>|<ops>}``.
    """
    try:
        if isinstance(matrix, np.ndarray) and matrix.size > 64 * 64:
            raise ValueError(f"{matrix.size} entries")
        m = np.asarray(matrix)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidInputError(f"NB101 matrix is not a small rectangular 0/1 array: {str(e)[:80]}") from None
    if m.ndim == 2 and m.shape[0] > 64:
        raise InvalidInputError(f"NB101 matrix has {m.shape[0]} rows; cells have at most {NB101_MAX_NODES} nodes")
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise InvalidInputError(f"NB101 matrix must be square with >= 2 rows; got shape {m.shape}")
    if m.dtype.kind not in "biuf" or not np.isin(m, (0, 1)).all():
        shown = sorted({repr(v) for v in m.reshape(-1).tolist()})[:8]
        raise InvalidInputError(f"NB101 matrix entries must be 0 or 1; got values {', '.join(shown)}")
    m = m.astype(np.int64)
    if np.tril(m).any():
        i, j = np.argwhere(np.tril(m))[0]
        raise InvalidInputError(f"NB101 matrix must be strictly upper-triangular; entry [{i}][{j}] is 1")
    if isinstance(ops, (str, bytes)) or not hasattr(ops, "__iter__"):
        raise InvalidInputError(f"NB101 ops must be a list of op names, got {type(ops).__name__}")
    ops = [str(o)[:64] for o in ops]
    n = m.shape[0]
    if len(ops) != n:
        raise InvalidInputError(f"NB101 cell has {n} matrix rows but {len(ops)} ops; they must match")
    if ops[0] != "input" or ops[-1] != "output":
        raise InvalidInputError(f"NB101 ops must start with 'input' and end with 'output'; got {ops}")
    for o in ops[1:-1]:
        if o not in NB101.ops:
            raise InvalidInputError(f"unknown NB101 op {o!r}; valid: {', '.join(NB101.ops)}")
    fwd, back = {0}, {n - 1}
    for j in range(1, n):
        if any(m[i, j] for i in fwd):
            fwd.add(j)
    for i in range(n - 2, -1, -1):
        if any(m[i, j] for j in back):
            back.add(i)
    if n - 1 not in fwd:
        raise InvalidInputError(f"NB101 cell has no input->output path (ops {ops})")
    keep = sorted(fwd & back)
    m = m[np.ix_(keep, keep)]
    ops = [ops[i] for i in keep]
    if len(ops) > NB101_MAX_NODES:
        raise InvalidInputError(f"NB101 cell has {len(ops)} nodes after pruning; at most {NB101_MAX_NODES} are allowed")
    if int(m.sum()) > NB101_MAX_EDGES:
        raise InvalidInputError(f"NB101 cell has {int(m.sum())} edges after pruning; at most {NB101_MAX_EDGES} are allowed")
    arch = "".join(map(str, m.flatten().tolist())) + "|" + ",".join(ops)
    nodes = [Node(f"{i}:{o}", o) for i, o in enumerate(ops)]
    edges = [(int(i), int(j)) for i, j in np.argwhere(m)]
    return NetGraph(nodes, edges, name=arch, kind="cell", meta={"space": "nb101", "arch": arch}).validate()


# ---------------------------------------------------------------------------- NAS-Bench-Graph
def nasbench_graph_key(link: Sequence[int], ops: Sequence[str]) -> str:
    """Canonical text of a NAS-Bench-Graph arch: ``"0,0,1,2|gcn,gat,skip,fc"``."""
    return ",".join(str(int(v)) for v in link) + "|" + ",".join(ops)


def nasbench_graph_graph(link: Sequence[int], ops: Sequence[str]) -> NetGraph:
    """A NAS-Bench-Graph architecture as a 6-node cell ``[input, op1..op4, output]``.

    Op ``k`` (1-based) reads the input when ``link[k-1] == 0``, else op ``link[k-1]`` (which must be
    an earlier op); ops that no other op reads feed the output. ``meta["arch"]`` is
    :func:`nasbench_graph_key`.
    """
    if any(isinstance(x, (str, bytes)) or not hasattr(x, "__iter__") for x in (link, ops)):
        raise InvalidInputError(
            f"NAS-Bench-Graph arch needs a list of 4 links and a list of 4 op names; got {type(link).__name__} "
            f"and {type(ops).__name__}"
        )
    lk = list(link)
    ops = list(ops)
    if len(lk) != 4 or len(ops) != 4:
        raise InvalidInputError(
            f"NAS-Bench-Graph arch needs 4 links and 4 ops; got {len(lk)} links {lk} and {len(ops)} ops {ops}"
        )
    for k, v in enumerate(lk):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) <= k:
            raise InvalidInputError(
                f"NAS-Bench-Graph link {lk}: op {k + 1} reads {v!r}; it may read 0 (input) or an earlier op 1..{k}"
            )
    for o in ops:
        if not isinstance(o, str) or o not in NASBENCH_GRAPH.ops:
            raise InvalidInputError(f"unknown NAS-Bench-Graph op {o!r}; valid: {', '.join(NASBENCH_GRAPH.ops)}")
    key = nasbench_graph_key(lk, ops)
    nodes = [Node("input", "input")] + [Node(f"op{k + 1}:{o}", o) for k, o in enumerate(ops)] + [Node("output", "output")]
    edges = [(int(v), k + 1) for k, v in enumerate(lk)]
    read = {int(v) for v in lk}
    edges += [(k, 5) for k in range(1, 5) if k not in read]
    return NetGraph(nodes, edges, name=key, kind="cell", meta={"space": "nasbench-graph", "arch": key}).validate()
