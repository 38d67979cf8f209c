"""Evaluation metrics (docs/design.md §3): MAPE, Acc(delta), Kendall tau-b, Spearman."""

from __future__ import annotations

import numpy as np

from archcast.errors import InvalidInputError


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.shape != p.shape:
        raise InvalidInputError(f"y_true has {t.size} values but y_pred has {p.size}")
    if t.size == 0:
        raise InvalidInputError("no values to score")
    return t, p


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean of ``|pred - true| / true`` (a fraction, not percent)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t) / np.abs(t)))


def acc_within(y_true: np.ndarray, y_pred: np.ndarray, delta: float) -> float:
    """Share of predictions with relative error <= ``delta`` (e.g. 0.1 for Acc(10%))."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t) / np.abs(t) <= delta))


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall tau-b over all pairs (scipy)."""
    t, p = _pair(y_true, y_pred)
    from scipy import stats  # ~0.6 s to import: only when a rank metric is asked for, not on `archcast predict`

    return float(stats.kendalltau(t, p).statistic)


def spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _pair(y_true, y_pred)
    from scipy import stats

    return float(stats.spearmanr(t, p).statistic)


def all_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Every metric archcast reports, keyed by name (fractions, not percent)."""
    return {
        "kendall_tau": kendall_tau(y_true, y_pred),
        "spearman": spearman(y_true, y_pred),
        "mape": mape(y_true, y_pred),
        "acc_1pct": acc_within(y_true, y_pred, 0.01),
        "acc_5pct": acc_within(y_true, y_pred, 0.05),
        "acc_10pct": acc_within(y_true, y_pred, 0.10),
    }
