"""The contract every predictor follows (scikit-learn habits) and the one registry, keyed by task.

* ``__init__(seed=0, **hparams)`` only stores; nothing is checked or built there.
* ``fit(graphs, y, val_graphs, val_y, init_from=None)`` validates (hyper-parameters against the
  class's ``DEFAULTS``/``CHOICES``, the data), learns and returns ``self``; learned state ends in
  ``_``. Model selection inside ``fit`` may look at the validation graphs only, never test data.
  ``init_from``: a fitted predictor of the same class to fine-tune from (where ``SUPPORTS_INIT``).
* ``predict(graphs)`` refuses an unfitted predictor; outputs are finite (an error otherwise).

One vocabulary of knobs across predictors: ``epochs``, ``lr``, ``weight_decay``, ``batch_size``,
``width``, ``ensemble``, ``threads`` (torch intra-op threads), ``progress``.

>>> sorted(TASKS)
['accuracy', 'latency']
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from numbers import Real
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from archcast.errors import InvalidInputError, NotFittedError
from archcast.graph import NetGraph
from archcast.registry import Registry

TASKS = ("accuracy", "latency")
# hyper-parameters allowed to be 0; every other numeric one must be > 0
NONNEGATIVE_HPARAMS = frozenset({"weight_decay", "dropout", "reg_lambda", "reg_alpha", "min_split_gain", "warmup",
                                 "lambda_rank", "lambda_cons", "patience_floor"})

_REGISTRIES: dict[str, Registry[type["Predictor"]]] = {t: Registry(f"{t} predictor") for t in TASKS}
BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "accuracy": ("transformer", "mlp", "gcn", "lgbm", "nnlp"),
    "latency": ("analytic", "gbdt", "archcast", "nnlp", "narformer", "kernels"),
}


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise InvalidInputError(f"task {task!r} is not one of {TASKS}")
    return task


def predictor_registry(task: str) -> Registry[type["Predictor"]]:
    """The registry of ``task`` (built-ins not loaded; see :func:`load_builtin_predictors`)."""
    return _REGISTRIES[_check_task(task)]


def register_predictor(task: str, name: str) -> Callable[[type["Predictor"]], type["Predictor"]]:
    """Class decorator: register under ``(task, name)`` and set the class's ``task``/``name``."""

    def deco(cls: type["Predictor"]) -> type["Predictor"]:
        cls.task, cls.name = task, name
        return predictor_registry(task).register(name, cls)  # type: ignore[return-value]

    return deco


def load_builtin_predictors(task: str | None = None) -> None:
    """Import the built-in predictor modules so that they register themselves (idempotent)."""
    for t in (TASKS if task is None else (_check_task(task),)):
        for mod in BUILTIN_MODULES[t]:
            importlib.import_module(f"archcast.predictors.{t}.{mod}")


def list_predictors(task: str = "accuracy") -> list[str]:
    """Registered predictor names of ``task``, sorted."""
    load_builtin_predictors(task)
    return predictor_registry(task).names()


def predictor_class(name: str, task: str = "accuracy") -> type["Predictor"]:
    """The class registered as ``name`` for ``task``; unknown names list the valid ones."""
    load_builtin_predictors(task)
    return predictor_registry(task).get(name)


def create_predictor(name: str, task: str = "accuracy", **kw: Any) -> "Predictor":
    """An unfitted predictor ``name`` of ``task`` built with ``seed=`` and hyper-parameters ``kw``.

    >>> create_predictor("flops-linear", task="latency").is_fitted()
    False
    """
    return predictor_class(name, task)(**kw)


# ------------------------------------------------------------------------------ validation
def check_hparams(name: str, defaults: Mapping[str, Any], given: Mapping[str, Any],
                  choices: Mapping[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """``defaults`` overridden by ``given``; an :class:`InvalidInputError` naming the parameter, the
    value received and what is allowed for unknown names, bad choices or out-of-range numbers.

    Types follow the default: an int default needs an int, a positive number default needs a finite
    number > 0 (>= 0 for :data:`NONNEGATIVE_HPARAMS`), a bool default a bool.
    """
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise InvalidInputError(
            f"predictor {name!r} got unknown hyper-parameter(s) {unknown}; valid: {', '.join(sorted(defaults))}")
    hp = {**defaults, **given}
    for key, allowed in (choices or {}).items():
        if hp[key] not in allowed:
            raise InvalidInputError(f"predictor {name!r}: {key}={hp[key]!r} is not one of {tuple(allowed)}")
    for key, default in defaults.items():
        v = hp[key]
        if key in (choices or {}) or v is None:
            continue
        if isinstance(default, bool):
            if not isinstance(v, bool):
                raise InvalidInputError(f"predictor {name!r}: {key}={v!r} must be true or false")
        elif isinstance(default, Real):
            floor_ok = isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and (
                v >= 0 if key in NONNEGATIVE_HPARAMS else v > 0)
            if not floor_ok:
                bound = ">= 0" if key in NONNEGATIVE_HPARAMS else "> 0"
                raise InvalidInputError(f"predictor {name!r}: {key}={v!r} must be a finite number {bound}")
            if isinstance(default, int) and not isinstance(v, int):
                raise InvalidInputError(f"predictor {name!r}: {key}={v!r} must be an integer")
        elif isinstance(default, str) and not isinstance(v, str):
            raise InvalidInputError(f"predictor {name!r}: {key}={v!r} must be a string")
    return hp


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


# ------------------------------------------------------------------------------ the contract
class Predictor(ABC):
    """Predicts one scalar per graph: accuracy in % (``task="accuracy"``) or latency in ms.

    Subclasses set ``DEFAULTS`` (every knob with its default) and ``CHOICES`` (allowed values of
    categorical knobs), implement :meth:`_fit` and :meth:`_predict`, and register with
    :func:`register_predictor`. Fitted state: ``hparams_`` plus whatever ends in ``_``.
    """

    name: ClassVar[str] = ""
    task: ClassVar[str] = ""
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    CHOICES: ClassVar[dict[str, Sequence[Any]]] = {}
    SUPPORTS_INIT: ClassVar[bool] = False  # fit(..., init_from=) fine-tunes a fitted predictor

    def __init__(self, *, seed: int = 0, **hparams: Any) -> None:
        self.seed = seed
        self.hparams = hparams

    # -- validation shared by every fit
    def _resolve_hparams(self) -> dict[str, Any]:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise InvalidInputError(f"predictor {self.name!r}: seed={self.seed!r} must be an integer")
        return check_hparams(self.name, self.DEFAULTS, self.hparams, self.CHOICES)

    def fit(self, graphs: Sequence[NetGraph], y: np.ndarray, val_graphs: Sequence[NetGraph],
            val_y: np.ndarray, *, init_from: "Predictor | None" = None) -> "Predictor":
        """Validate, then learn from ``graphs``/``y``; select epochs/checkpoints on ``val_*`` only."""
        hp = self._resolve_hparams()
        graphs, val_graphs = list(graphs), list(val_graphs)
        y = check_xy(graphs, y)
        val_y = check_xy(val_graphs, val_y, "validation")
        if init_from is not None:
            if not self.SUPPORTS_INIT:
                raise InvalidInputError(f"predictor {self.name!r} cannot fine-tune from another predictor")
            if type(init_from) is not type(self) or not init_from.is_fitted():
                raise InvalidInputError(
                    f"init_from must be a fitted {type(self).__name__}; got {type(init_from).__name__}")
        self.hparams_ = hp
        self._fit(graphs, y, val_graphs, val_y, init_from)
        return self

    @abstractmethod
    def _fit(self, graphs: list[NetGraph], y: np.ndarray, val_graphs: list[NetGraph], val_y: np.ndarray,
             init_from: "Predictor | None") -> None:
        """Learn; ``self.hparams_`` holds the validated hyper-parameters."""

    @abstractmethod
    def _predict(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        """Predictions for fitted state, shape ``[len(graphs)]``."""

    def predict(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        if not self.is_fitted():
            raise NotFittedError(f"predictor {self.name!r} is not fitted: call fit() or load a checkpoint first")
        out = np.asarray(self._predict(list(graphs)), dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(out)):
            raise InvalidInputError(f"predictor {self.name!r} produced a non-finite prediction "
                                    "(corrupt weights or an input far outside its range)")
        return out

    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("__") and k != "hparams_" for k in vars(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.hparams.items()))
        return f"{type(self).__name__}(seed={self.seed}{', ' + args if args else ''})"


__all__ = ["TASKS", "Predictor", "check_hparams", "check_xy", "create_predictor", "list_predictors",
           "load_builtin_predictors", "predictor_class", "predictor_registry", "register_predictor"]
