"""Features of whole-network graphs for latency predictors, computed once per graph object.

* :func:`tokens` — :class:`~archcast.tokenizer.TokenizedGraph` per graph for a named tokenizer,
  memoised on the graph object (a benchmark fits many predictors on the same graphs; tokenizing
  ~7,000 networks takes minutes, a dictionary lookup does not).
* :func:`directed_edges` — forward edges ``[E, 2]`` in token order. Tokens are topologically
  sorted, so the upper triangle of the symmetric adjacency is exactly the predecessor -> successor
  edges.
* :func:`graph_table` — one numeric row per graph (costs on log scales, node/edge counts, op-type
  histogram and per-op-type FLOPs share) for the tree and linear baselines.
* :class:`Packed` / :func:`pack` — a mini-batch as one big disjoint graph (no padding): node
  tokens ``[n_total, d]``, edges with offsets, the graph index of every node, graph features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph
from archcast.tokenizer.network import TokenizedGraph, check_dense_budget, get_tokenizer

_MEMO_ATTR = "_archcast_latency_memo"


def graph_memo(graph: NetGraph) -> dict:
    """A per-graph cache dict (tokens, edges, tables) kept on the graph object itself."""
    memo = graph.__dict__.get(_MEMO_ATTR)
    if memo is None:
        memo = {}
        graph.__dict__[_MEMO_ATTR] = memo
    return memo


def check_networks(graphs: Sequence[NetGraph], what: str = "input") -> None:
    kinds = {getattr(g, "kind", None) for g in graphs}
    if kinds - {"network"}:
        raise InvalidInputError(
            f"latency prediction needs whole-network graphs (kind 'network'); the {what} holds kinds "
            f"{sorted(str(k) for k in kinds)}")


def tokens(graphs: Sequence[NetGraph], tokenizer: str = "archcast-v1", progress: bool = False) -> list[TokenizedGraph]:
    """Tokenized graphs (memoised per graph object and tokenizer name)."""
    check_networks(graphs)
    tok = None
    out: list[TokenizedGraph] = []
    it = graphs
    if progress and len(graphs) > 200:
        from tqdm.auto import tqdm

        it = tqdm(graphs, desc=f"tokenize ({tokenizer})", unit="graph", leave=False)
    for g in it:
        memo = graph_memo(g)
        key = ("tok", tokenizer)
        t = memo.get(key)
        if t is None:
            tok = tok or get_tokenizer(tokenizer)
            t = tok.encode(g)
            t.adj = None  # dense N x N is rebuilt when needed; edges are kept instead
            memo[key] = t
            memo[("edges", tokenizer)] = _edges_of(g)
        out.append(t)
    return out


def _edges_of(graph: NetGraph) -> np.ndarray:
    order = graph.topological_order()
    pos = np.empty(len(order), dtype=np.int64)
    pos[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    e = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    e = pos[e]
    return np.unique(e, axis=0) if len(e) else e


def directed_edges(graph: NetGraph, tokenizer: str = "archcast-v1") -> np.ndarray:
    """Forward edges ``[E, 2]`` (source, target) as token indices (after :func:`tokens`)."""
    memo = graph_memo(graph)
    e = memo.get(("edges", tokenizer))
    if e is None:
        tokens([graph], tokenizer)
        e = memo[("edges", tokenizer)]
    return e


def dense_adjacency(graph: NetGraph, tokenizer: str = "archcast-v1") -> np.ndarray:
    """Symmetric 0/1 adjacency in token order (what the reference model reads); refused (one-line
    InvalidInputError) beyond :data:`archcast.tokenizer.network.DENSE_BUDGET_BYTES`."""
    n = tokens([graph], tokenizer)[0].n_nodes
    check_dense_budget(4 * n * n, f"graph {graph.name!r} ({n} nodes)")
    e = directed_edges(graph, tokenizer)
    adj = np.zeros((n, n), dtype=np.float32)
    adj[e[:, 0], e[:, 1]] = 1.0
    adj[e[:, 1], e[:, 0]] = 1.0
    np.fill_diagonal(adj, 0.0)
    return adj


# ------------------------------------------------------------------------------ tabular


# ------------------------------------------------------------------------------ packing
@dataclass
class Packed:
    """A mini-batch as one disjoint graph. ``x [n, d]``, ``src``/``dst`` ``[E]`` (forward edges,
    offset into the batch), ``graph_index [n]``, ``gf [B, g]``, ``n_graphs``."""

    x: "np.ndarray"
    src: "np.ndarray"
    dst: "np.ndarray"
    graph_index: "np.ndarray"
    gf: "np.ndarray"
    n_graphs: int

    def torch(self):  # -> dict of tensors
        import torch

        return {
            "x": torch.from_numpy(self.x), "src": torch.from_numpy(self.src), "dst": torch.from_numpy(self.dst),
            "graph_index": torch.from_numpy(self.graph_index), "gf": torch.from_numpy(self.gf),
            "n_graphs": self.n_graphs,
        }


def pack(graphs: Sequence[NetGraph], tokenizer: str = "archcast-v1") -> Packed:
    toks = tokens(graphs, tokenizer)
    xs, srcs, dsts, gidx = [], [], [], []
    off = 0
    for i, (g, t) in enumerate(zip(graphs, toks)):
        e = directed_edges(g, tokenizer)
        xs.append(t.tokens)
        srcs.append(e[:, 0] + off)
        dsts.append(e[:, 1] + off)
        gidx.append(np.full(t.n_nodes, i, dtype=np.int64))
        off += t.n_nodes
    return Packed(
        x=np.concatenate(xs).astype(np.float32, copy=False),
        src=np.concatenate(srcs).astype(np.int64), dst=np.concatenate(dsts).astype(np.int64),
        graph_index=np.concatenate(gidx), gf=np.stack([t.graph_features for t in toks]).astype(np.float32),
        n_graphs=len(graphs),
    )


def size_batches(sizes: np.ndarray, max_nodes: int, rng: np.random.Generator | None = None,
                 max_graphs: int = 64, by_size: bool = True) -> list[np.ndarray]:
    """Index batches with at most ``max_nodes`` nodes (or ``max_graphs`` graphs) each.

    ``by_size``: group graphs of similar size (padded models waste less); otherwise a random order
    (packed models, no padding). Batch order is shuffled when ``rng`` is given."""
    sizes = np.asarray(sizes)
    if not by_size:
        order = rng.permutation(len(sizes)) if rng is not None else np.arange(len(sizes))
    elif rng is not None:
        noise = rng.uniform(0.0, 0.25, len(sizes))  # shuffle neighbours of similar size
        order = np.argsort(np.log1p(sizes) + noise, kind="stable")
    else:
        order = np.argsort(sizes, kind="stable")
    batches, cur, cur_nodes = [], [], 0
    for i in order:
        if cur and (cur_nodes + sizes[i] > max_nodes or len(cur) >= max_graphs):
            batches.append(np.asarray(cur))
            cur, cur_nodes = [], 0
        cur.append(i)
        cur_nodes += int(sizes[i])
    if cur:
        batches.append(np.asarray(cur))
    if rng is not None:
        rng.shuffle(batches)
    return batches
