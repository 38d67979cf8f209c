"""The contract every registered predictor follows (scikit-learn habits).

``__init__`` only stores hyper-parameters; ``fit`` validates and learns (state ends in ``_``);
``predict`` refuses an unfitted predictor. Model selection inside ``fit`` may use the validation
graphs only, never test data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import numpy as np

from archcast.errors import InvalidInputError, NotFittedError
from archcast.graph import NetGraph
from archcast.registry import Registry

TASKS = ("accuracy", "latency")


class Predictor(ABC):
    """Predicts one scalar per graph (accuracy in %, or latency in ms).

    Subclasses set ``name`` and register themselves in :data:`PREDICTORS`.
    """

    name: ClassVar[str] = ""

    def __init__(self, *, task: str = "accuracy", seed: int = 0, **hparams: Any) -> None:
        if task not in TASKS:
            raise InvalidInputError(f"task {task!r} is not one of {TASKS}")
        self.task = task
        self.seed = seed
        self.hparams = hparams

    @abstractmethod
    def fit(
        self,
        graphs: Sequence[NetGraph],
        y: np.ndarray,
        val_graphs: Sequence[NetGraph],
        val_y: np.ndarray,
    ) -> "Predictor":
        """Learn from ``graphs``/``y``; select epochs/checkpoints on ``val_*`` only. Returns self."""

    @abstractmethod
    def _predict(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        """Predictions for fitted state, shape ``[len(graphs)]``."""

    def predict(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        if not self.is_fitted():
            raise NotFittedError(f"predictor {self.name!r} is not fitted: call fit() or load a checkpoint first")
        return np.asarray(self._predict(graphs), dtype=np.float64).reshape(-1)

    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("__") for k in vars(self))


PREDICTORS: Registry[type[Predictor]] = Registry("predictor")


def check_xy(graphs: Sequence[NetGraph], y: np.ndarray, what: str = "training") -> np.ndarray:
    """Validate a ``what`` set (training / validation): same length, finite targets, >= 2 graphs."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(graphs) != len(y):
        raise InvalidInputError(f"got {len(graphs)} {what} graphs but {len(y)} {what} targets")
    if len(graphs) < 2:
        raise InvalidInputError(f"need at least 2 {what} graphs, got {len(graphs)}")
    if not np.all(np.isfinite(y)):
        raise InvalidInputError(f"{what} targets contain NaN or infinite values")
    return y
