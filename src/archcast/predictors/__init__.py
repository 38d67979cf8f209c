"""Predictors: every model that maps graphs to one number follows one contract
(:class:`~archcast.predictors.base.Predictor`) and is registered under ``(task, name)``:
``accuracy`` predictors (cells of a NAS space) in :mod:`archcast.predictors.accuracy`, whole-network
``latency`` predictors in :mod:`archcast.predictors.latency`.

Importing this package loads nothing heavy: the built-in predictors (torch, torch-geometric,
LightGBM) register when :func:`list_predictors`, :func:`predictor_class` or
:func:`create_predictor` is first called for their task.
"""

from __future__ import annotations

from archcast.predictors.base import (
    TASKS,
    Predictor,
    create_predictor,
    list_predictors,
    load_builtin_predictors,
    predictor_class,
    predictor_registry,
    register_predictor,
)

__all__ = ["TASKS", "Predictor", "create_predictor", "list_predictors", "load_builtin_predictors",
           "predictor_class", "predictor_registry", "register_predictor"]
