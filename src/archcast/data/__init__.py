"""Data sets of labelled cells and networks, and the splits used to evaluate predictors.

:data:`DATASETS` maps a name to a zero-argument loader returning a :class:`CellDataset`:
``"nb201"`` (AnalogNAS-Bench CIFAR-10 baseline accuracy, percent) and
``"nasbench-graph:<dataset>"`` (NAS-Bench-Graph test accuracy, percent) for its 9 data sets.
Nothing is read at import.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from archcast.data.analognas import load_analognas
from archcast.data.dataset import CellDataset, LazyGraphs
from archcast.data.nasbench_graph import DATASETS as NASBENCH_GRAPH_DATASETS
from archcast.data.nasbench_graph import load_nasbench_graph
from archcast.data.splits import group_split, random_split
from archcast.registry import Registry

DATASETS: Registry[Callable[[], CellDataset]] = Registry("dataset")
DATASETS.register("nb201", partial(load_analognas, "baseline_accuracy"))
for _name in NASBENCH_GRAPH_DATASETS:
    DATASETS.register(f"nasbench-graph:{_name}", partial(load_nasbench_graph, _name, "perf"))
del _name


def load_dataset(name: str) -> CellDataset:
    """Load a registered data set by exact name (the error lists the valid names)."""
    return DATASETS.get(name)()


__all__ = [
    "DATASETS",
    "CellDataset",
    "LazyGraphs",
    "group_split",
    "load_analognas",
    "load_dataset",
    "load_nasbench_graph",
    "random_split",
]
