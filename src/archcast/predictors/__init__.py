"""Predictors: every model that maps graphs to a scalar (accuracy or latency) follows
:class:`~archcast.predictors.base.Predictor` and is registered by name in
:data:`~archcast.predictors.base.PREDICTORS`.

Importing this package loads nothing heavy: the built-in predictors (torch, torch-geometric,
LightGBM) register when :func:`load_builtin_predictors` or :func:`get_predictor` is called.
"""

from __future__ import annotations

import importlib
from typing import Any

from archcast.predictors.base import PREDICTORS, Predictor

BUILTIN_MODULES = ("mlp", "gcn", "trees", "nnlp")
# written by another part of the project; may be absent in a partial checkout
OPTIONAL_MODULES = ("transformer",)


def load_builtin_predictors() -> None:
    """Import the built-in predictor modules so they register themselves (idempotent)."""
    for mod in BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{mod}")
    for mod in OPTIONAL_MODULES:
        full = f"{__name__}.{mod}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError as e:
            if e.name != full:  # the module exists but one of its own imports is missing: surface it
                raise


def get_predictor(name: str, **kw: Any) -> Predictor:
    """An unfitted predictor registered as ``name``, built with ``kw`` (``task``, ``seed``, hparams).

    Raises :class:`~archcast.errors.UnknownNameError` listing the valid names.
    """
    load_builtin_predictors()
    return PREDICTORS.get(name)(**kw)


__all__ = ["PREDICTORS", "Predictor", "get_predictor", "load_builtin_predictors"]
