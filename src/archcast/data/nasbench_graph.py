"""NAS-Bench-Graph (PyPI ``nas-bench-graph``): GNN architectures benchmarked on 9 graph data sets.

Each ``light/<dataset>.bench`` file is a pickle of ``{Arch.hash_arch(): {"valid_perf", "perf",
"latency", "para"}}``. Hashes are enumerated the way the package's ``all_archs`` does (every
``link_list`` pattern x 4 ops, all-skip excluded, isomorphic duplicates skipped by
``Arch.check_isomorph``); proteins uses the package's reduced op list, but its file is keyed by the
default ``hash_arch()`` (full op list, base 10): ``use_proteins=True`` hashes match only 7 of 2,021.
Only numpy's ``dtype``/``scalar`` reconstruction globals are allowed when unpickling.
"""

from __future__ import annotations

import importlib.util
import itertools
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from archcast.data.dataset import CellDataset, LazyGraphs
from archcast.errors import InvalidInputError, UnknownNameError
from archcast.frontends.cells import nasbench_graph_graph, nasbench_graph_key

DATASETS = ("arxiv", "citeseer", "computers", "cora", "cs", "photo", "physics", "proteins", "pubmed")
METRICS = {
    "perf": "test accuracy, percent (mean of 3 seeds)",
    "valid_perf": "validation accuracy, percent (mean of 3 seeds)",
    "latency": "latency in seconds (hardware undocumented; noisy)",
    "para": "parameters, millions (as stored by the package)",
}
_PERCENT = {"perf", "valid_perf"}


def _numpy_scalar() -> Any:
    try:  # numpy >= 2 moved it; the pickles name the numpy 1 location
        from numpy._core.multiarray import scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return scalar


class _BenchUnpickler(pickle.Unpickler):
    """Allows only numpy dtype and scalar reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if name == "scalar" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_scalar()
        raise InvalidInputError(
            f"refusing to unpickle global {module}.{name} from a NAS-Bench-Graph file; only numpy.dtype and numpy scalars are allowed"
        )


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise UnknownNameError(f"unknown NAS-Bench-Graph data set {dataset!r}; valid: {', '.join(DATASETS)}")


def bench_path(dataset: str) -> Path:
    """Path of the package's ``light/<dataset>.bench``."""
    _check_dataset(dataset)
    spec = importlib.util.find_spec("nas_bench_graph")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError("NAS-Bench-Graph is not installed: pip install nas-bench-graph==1.4.0")
    path = Path(next(iter(spec.submodule_search_locations))) / "light" / f"{dataset}.bench"
    if not path.is_file():
        raise InvalidInputError(f"NAS-Bench-Graph file is missing: {path}")
    return path


def read_bench(path: str | Path) -> dict[int, dict[str, float]]:
    """Parse a ``.bench`` pickle into ``{hash: {metric: float}}`` (values as stored: fractions, s, M)."""
    with open(path, "rb") as f:
        raw = _BenchUnpickler(f).load()
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{path}: NAS-Bench-Graph pickle holds a {type(raw).__name__}; expected a dict")
    out: dict[int, dict[str, float]] = {}
    for h, rec in raw.items():
        try:
            out[int(h)] = {m: float(rec[m]) for m in METRICS}
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInputError(f"{path}: entry {h!r} lacks a numeric metric ({e})") from None
    return out


@lru_cache(maxsize=2)
def arch_table(proteins: bool = False) -> dict[int, tuple[tuple[int, ...], tuple[str, ...]]]:
    """``{hash_arch: (link, ops)}`` for every architecture the package enumerates.

    Mirrors ``nas_bench_graph.architecture.all_archs`` (which prints, so it is not called); with
    ``proteins`` the ops come from ``gnn_list_proteins`` while the hash stays the default one, as
    the shipped ``proteins.bench`` is keyed.
    """
    from nas_bench_graph import architecture as nbg  # plain module; imported only when needed

    ops_list = nbg.gnn_list_proteins if proteins else nbg.gnn_list
    table: dict[int, tuple[tuple[int, ...], tuple[str, ...]]] = {}
    for ops in itertools.product(ops_list, repeat=4):
        if all(o == "skip" for o in ops):
            continue
        for lk in nbg.link_list:
            arch = nbg.Arch(list(lk), list(ops))
            if arch.check_isomorph():  # unchanged by the canonicalisation: keep
                table[arch.hash_arch()] = (tuple(lk), tuple(ops))
    return table


@lru_cache(maxsize=None)
def _parsed(dataset: str) -> tuple[list[tuple[tuple[int, ...], tuple[str, ...]]], dict[str, np.ndarray], int]:
    bench = read_bench(bench_path(dataset))
    table = arch_table(dataset == "proteins")
    hashes = sorted(h for h in bench if h in table)
    archs = [table[h] for h in hashes]
    cols = {}
    for m in METRICS:
        a = np.array([bench[h][m] for h in hashes], dtype=np.float64) * (100.0 if m in _PERCENT else 1.0)
        a.flags.writeable = False
        cols[m] = a
    return archs, cols, len(bench) - len(hashes)


def _build(spec: object) -> Any:
    link, ops = spec  # type: ignore[misc]
    return nasbench_graph_graph(link, ops)


def load_nasbench_graph(dataset: str, metric: str = "perf") -> CellDataset:
    """NAS-Bench-Graph architectures of ``dataset`` with label ``metric`` (see :data:`METRICS`).

    ``perf``/``valid_perf`` are in percent (the package stores fractions), ``latency`` in seconds,
    ``para`` in millions of parameters. 26,206 architectures per data set (2,021 for proteins),
    ordered by hash; keys are :func:`~archcast.frontends.cells.nasbench_graph_key` strings; graphs
    are built lazily; ``y`` is a shared read-only array. Bench entries whose hash the enumeration
    does not produce raise an error.
    """
    _check_dataset(dataset)
    if metric not in METRICS:
        raise InvalidInputError(f"unknown NAS-Bench-Graph metric {metric!r}; valid: {', '.join(METRICS)}")
    archs, cols, unmatched = _parsed(dataset)
    if unmatched:
        raise InvalidInputError(
            f"NAS-Bench-Graph {dataset}: {unmatched} bench entries have hashes the architecture enumeration does not produce"
        )
    return CellDataset(
        graphs=LazyGraphs(archs, _build),
        y=cols[metric],
        keys=[nasbench_graph_key(lk, ops) for lk, ops in archs],
        space="nasbench-graph",
        name=f"nasbench-graph/{dataset}:{metric}",
        groups=None,
    )
