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


def kernel_agreement(pred_us: np.ndarray, true_us: np.ndarray, top: int = 5) -> tuple[float, float, float] | None:
    """One model's kernel times ``pred_us`` (predicted, or measured again) against ``true_us`` (the
    labels; kernels without a positive finite label are left out): ``(mape, wape, top5)`` — the
    mean relative error over kernels, ``sum |p - t| / sum t`` (the error where the time is), and the
    share of the ``top`` slowest labelled kernels that are among the ``top`` slowest of ``pred_us``.
    None when no kernel has a label."""
    t = np.asarray(true_us, dtype=np.float64).reshape(-1)
    p = np.asarray(pred_us, dtype=np.float64).reshape(-1)
    if t.shape != p.shape:
        raise InvalidInputError(f"{p.size} kernel times against {t.size} labels")
    ok = np.isfinite(t) & (t > 0)
    if not ok.any():
        return None
    pp, tt = p[ok], t[ok]
    k = min(top, int(ok.sum()))
    overlap = len(set(np.argsort(-pp)[:k].tolist()) & set(np.argsort(-tt)[:k].tolist())) / k
    return float(np.mean(np.abs(pp / tt - 1.0))), float(np.abs(pp - tt).sum() / tt.sum()), overlap


def kernel_agreement_summary(mape_: list[float], wape: list[float], top5: list[float]) -> dict[str, float]:
    """Per-model :func:`kernel_agreement` values pooled: median kernel MAPE, mean WAPE, mean top-5
    overlap and the share of models with at least 4 of their 5 slowest kernels in common."""
    return {"median_kernel_mape": float(np.median(mape_)), "mean_wape": float(np.mean(wape)),
            "top5_overlap": float(np.mean(top5)), "top5_at_least_4": float(np.mean(np.asarray(top5) >= 0.8))}


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
