"""Cell tokenization: NAS cells (``kind="cell"`` graphs) as padded integer/adjacency arrays.

:func:`cell_arrays` is the shared, model-agnostic encoding (op ids, directed adjacency, mask) that
the Transformer tokenizer and the baselines (MLP, GCN, trees, NNLP) all start from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph
from archcast.graph.spaces import SPACES, SearchSpace


@dataclass
class CellArrays:
    """A padded batch of cells.

    Attributes:
        op_ids: ``[B, N]`` int64, index into ``space.vocabulary`` (+1; 0 is padding).
        adj: ``[B, N, N]`` float32, ``adj[b, i, j] = 1`` for an edge i -> j (directed).
        mask: ``[B, N]`` bool, True on real nodes.
        space: the search space the vocabulary comes from.
    """

    op_ids: np.ndarray
    adj: np.ndarray
    mask: np.ndarray
    space: SearchSpace

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids including padding (0)."""
        return len(self.space.vocabulary) + 1

    def one_hot(self) -> np.ndarray:
        """``[B, N, V]`` float32 one-hot of op ids (padding row all zero)."""
        eye = np.eye(self.vocab_size, dtype=np.float32)
        oh = eye[self.op_ids]
        oh[..., 0] = 0.0
        return oh[..., 1:]


def space_of(graphs: Sequence[NetGraph]) -> SearchSpace:
    """The one search space shared by ``graphs`` (error if they mix spaces or are not cells)."""
    names = {g.meta.get("space") for g in graphs}
    if len(names) != 1 or None in names:
        raise InvalidInputError(f"cell graphs must all name one search space in meta['space']; got {sorted(map(str, names))}")
    if any(g.kind != "cell" for g in graphs):
        raise InvalidInputError("cell_arrays needs graphs of kind 'cell'")
    return SPACES.get(names.pop())


def cell_arrays(graphs: Sequence[NetGraph], space: SearchSpace | None = None) -> CellArrays:
    """Encode cells of one space into padded arrays (nodes in listing order: frontends list them
    topologically)."""
    if not graphs:
        raise InvalidInputError("no graphs to encode")
    space = space or space_of(graphs)
    index = {op: i + 1 for i, op in enumerate(space.vocabulary)}
    n = space.max_nodes
    b = len(graphs)
    op_ids = np.zeros((b, n), dtype=np.int64)
    adj = np.zeros((b, n, n), dtype=np.float32)
    mask = np.zeros((b, n), dtype=bool)
    for k, g in enumerate(graphs):
        if len(g.nodes) > n:
            raise InvalidInputError(f"cell {g.name!r} has {len(g.nodes)} nodes; space {space.name!r} allows {n}")
        for i, node in enumerate(g.nodes):
            try:
                op_ids[k, i] = index[node.op_type]
            except KeyError:
                raise InvalidInputError(
                    f"op {node.op_type!r} is not in space {space.name!r}; valid: {', '.join(space.vocabulary)}"
                ) from None
        mask[k, : len(g.nodes)] = True
        if g.edges:
            e = np.asarray(g.edges)
            adj[k, e[:, 0], e[:, 1]] = 1.0
    return CellArrays(op_ids, adj, mask, space)
