"""CellDataset: NAS cells with one label each, as every cell loader returns them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, overload

import numpy as np

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph


class LazyGraphs(Sequence[NetGraph]):
    """A read-only list of graphs built on first access from ``specs`` by ``build`` (then cached).

    Building 15,625 NB201 graphs takes about a second; most uses (splits, label statistics) need
    none of them, and a training run needs each one once.
    """

    def __init__(self, specs: Sequence[object], build: Callable[[object], NetGraph]) -> None:
        self._specs = list(specs)
        self._build = build
        self._cache: list[NetGraph | None] = [None] * len(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    @overload
    def __getitem__(self, i: int) -> NetGraph: ...
    @overload
    def __getitem__(self, i: slice) -> list[NetGraph]: ...
    def __getitem__(self, i: int | slice) -> NetGraph | list[NetGraph]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = range(len(self))[i]  # IndexError and negative indices as for a list
        g = self._cache[i]
        if g is None:
            g = self._cache[i] = self._build(self._specs[i])
        return g

    def __iter__(self) -> Iterator[NetGraph]:
        return (self[i] for i in range(len(self)))

    def take(self, idx: Sequence[int]) -> "LazyGraphs":
        """A lazy sub-list (shares nothing mutable except already built graphs)."""
        sub = LazyGraphs([self._specs[i] for i in idx], self._build)
        sub._cache = [self._cache[i] for i in idx]
        return sub


@dataclass
class CellDataset:
    """Cells of one search space with one scalar label each.

    Attributes:
        graphs: ``kind="cell"`` graphs (a :class:`LazyGraphs` or a plain list), one per cell.
        y: ``[n]`` float64 labels; the unit is in ``name`` and the loader's docstring
            (accuracies in percent, latency in seconds...).
        keys: canonical arch strings, unique per cell (``meta["arch"]`` of the graphs).
        space: search-space name (``"nb201"``, ``"nb101"``, ``"nasbench-graph"``).
        name: data set name, e.g. ``"nb201/analognas:baseline_accuracy"``.
        groups: ``[n]`` int64 isomorphism-class ids (cells computing the same function share one),
            or None where the space has no such classes computed.
    """

    graphs: Sequence[NetGraph]
    y: np.ndarray
    keys: list[str]
    space: str
    name: str
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.keys)
        if len(self.graphs) != n or self.y.shape != (n,) or (self.groups is not None and self.groups.shape != (n,)):
            raise InvalidInputError(
                f"CellDataset {self.name!r}: {len(self.graphs)} graphs, y shape {self.y.shape}, {n} keys"
                + (f", groups shape {self.groups.shape}" if self.groups is not None else "")
                + "; all must have one entry per cell"
            )

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, idx: Sequence[int] | np.ndarray) -> "CellDataset":
        """The cells at positions ``idx`` (in that order)."""
        ix = np.asarray(idx, dtype=np.int64).reshape(-1)
        if ix.size and (ix.min() < -len(self) or ix.max() >= len(self)):
            raise InvalidInputError(f"subset index out of range 0..{len(self) - 1}: min {ix.min()}, max {ix.max()}")
        ix = ix % max(len(self), 1)
        lst = ix.tolist()
        graphs = self.graphs.take(lst) if isinstance(self.graphs, LazyGraphs) else [self.graphs[i] for i in lst]
        return CellDataset(
            graphs=graphs,
            y=self.y[ix],
            keys=[self.keys[i] for i in lst],
            space=self.space,
            name=self.name,
            groups=None if self.groups is None else self.groups[ix],
        )
