"""Fixed-length cell features shared by the cell baselines (MLP, LightGBM, GCN, NNLP).

Everything starts from :func:`archcast.tokenizer.cell.cell_arrays`; this module adds the checks a
fitted predictor needs (same search space at fit and predict time, nodes listed topologically) and
the BANANAS-style "adjacency encoding".
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph
from archcast.graph.spaces import SearchSpace
from archcast.tokenizer.cell import CellArrays, cell_arrays, space_of


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
