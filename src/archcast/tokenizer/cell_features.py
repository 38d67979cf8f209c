"""Fixed-length cell features shared by the cell baselines (MLP, LightGBM, GCN, NNLP).

Everything starts from :func:`archcast.tokenizer.cell.cell_arrays`; this module adds the checks a
fitted predictor needs (same search space at fit and predict time, nodes listed topologically) and
the BANANAS-style "adjacency encoding", and the token features of the cell transformers (op /
position codes, the "on a live input->output path" flag, relabelled isomorphic copies).
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph
from archcast.graph.spaces import SPACES, SearchSpace
from archcast.tokenizer.cell import CellArrays, cell_arrays, space_of
from archcast.tokenizer.encoding import nerf_code


def encode_cells(graphs: Sequence[NetGraph], space: SearchSpace | None = None) -> CellArrays:
    """:func:`cell_arrays` of ``graphs``, which must all belong to ``space`` when it is given.

    Raises :class:`InvalidInputError` when the graphs come from another space than ``space`` or
    list a node before one of its predecessors (the encodings assume a topological listing).
    """
    found = space_of(graphs)
    if space is not None and found.name != space.name:
        raise InvalidInputError(
            f"graphs are cells of space {found.name!r} but the predictor was fitted on space {space.name!r}"
        )
    arrays = cell_arrays(graphs, found)
    bad = np.flatnonzero(np.tril(arrays.adj).any(axis=(1, 2)))
    if bad.size:
        g = graphs[int(bad[0])]
        raise InvalidInputError(
            f"cell {g.name!r} lists a node before its predecessor; pass graph.topologically_sorted() instead"
        )
    return arrays


def adjacency_encoding(arrays: CellArrays) -> np.ndarray:
    """``[B, N(N-1)/2 + N*V]`` float32: strictly-upper-triangular adjacency ‖ flattened op one-hot.

    ``N`` = ``space.max_nodes``, ``V`` = ``len(space.vocabulary)``; padding nodes encode as zeros.
    """
    n = arrays.adj.shape[1]
    iu = np.triu_indices(n, k=1)
    adj = arrays.adj[:, iu[0], iu[1]]
    oh = arrays.one_hot().reshape(len(arrays.op_ids), -1)
    return np.concatenate([adj, oh], axis=1).astype(np.float32)


def op_counts(arrays: CellArrays) -> np.ndarray:
    """``[B, V]`` float32: how many nodes of each vocabulary op a cell has."""
    return arrays.one_hot().sum(axis=1)


# --------------------------------------------------------------------------- transformer tokens
CELL_TOKENIZER_VERSION = "cell-1"

def _reach(adj: np.ndarray) -> np.ndarray:
    """Transitive closure with self: ``[B, N, N]`` bool, r[b,i,j] = j reachable from i."""
    n = adj.shape[-1]
    r = np.broadcast_to(np.eye(n, dtype=bool), adj.shape).copy()
    a = adj > 0
    for _ in range(n):
        nxt = r | (np.einsum("bij,bjk->bik", r.astype(np.float32), a.astype(np.float32)) > 0)
        if np.array_equal(nxt, r):
            break
        r = nxt
    return r

def live_nodes(arr: CellArrays) -> np.ndarray:
    """``[B, N]`` bool: node lies on an input->output path (``none`` ops block the path)."""
    voc = arr.space.vocabulary
    adj = arr.adj.copy()
    if "none" in voc:
        dead = arr.op_ids == voc.index("none") + 1
        adj[dead, :] = 0.0
        adj = np.where(dead[:, None, :], 0.0, adj)
    r = _reach(adj)
    inp = arr.op_ids == voc.index("input") + 1
    out = arr.op_ids == voc.index("output") + 1
    from_in = np.einsum("bi,bij->bj", inp.astype(np.float32), r.astype(np.float32)) > 0
    to_out = np.einsum("bij,bj->bi", r.astype(np.float32), out.astype(np.float32)) > 0
    return from_in & to_out & arr.mask

def relabel(arr: CellArrays, rng: np.random.Generator) -> CellArrays:
    """An isomorphic copy of every cell: nodes re-listed in another random topological order
    (input stays first, output last). Same graph, different node indices."""
    b, n = arr.op_ids.shape
    ops = np.zeros_like(arr.op_ids)
    adj = np.zeros_like(arr.adj)
    for k in range(b):
        m = int(arr.mask[k].sum())
        a = arr.adj[k, :m, :m] > 0
        indeg = a.sum(0).astype(int)
        ready = [i for i in range(m) if indeg[i] == 0]
        order: list[int] = []
        while ready:
            # keep the output (last listed node) for last when something else is ready
            cand = [i for i in ready if i != m - 1] or ready
            i = cand[int(rng.integers(len(cand)))]
            ready.remove(i)
            order.append(i)
            for j in np.nonzero(a[i])[0]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    ready.append(int(j))
        perm = np.asarray(order)
        ops[k, :m] = arr.op_ids[k, perm]
        adj[k, :m, :m] = arr.adj[k][np.ix_(perm, perm)]
    return CellArrays(ops, adj, arr.mask.copy(), arr.space)

def cell_tokens(arr: CellArrays, style: str) -> np.ndarray:
    """Token features ``[B, N, d]`` float32 (zeros on padding)."""
    b, n = arr.op_ids.shape
    pos = np.broadcast_to(np.arange(n), (b, n))
    if style == "reference":
        tok = np.concatenate([nerf_code(arr.op_ids - 1, 32), nerf_code(pos, 32)], axis=-1)
    elif style == "archcast":
        v = len(arr.space.vocabulary)
        tok = np.concatenate(
            [arr.one_hot(), np.eye(n, dtype=np.float32)[pos], live_nodes(arr)[..., None].astype(np.float32)],
            axis=-1,
        )
        assert tok.shape[-1] == v + n + 1
    else:
        raise InvalidInputError(f"cell token style {style!r} is not one of ('reference', 'archcast')")
    return (tok * arr.mask[..., None]).astype(np.float32)

def vocabulary_fingerprint(space: str, style: str) -> str:
    sp = SPACES.get(space)
    blob = json.dumps([CELL_TOKENIZER_VERSION, style, sp.name, list(sp.vocabulary), sp.max_nodes])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
