"""Which models to measure on a new machine to adapt the ``kernels`` predictor
(:meth:`~archcast.predictors.latency.kernels.KernelLatency.adapt`).

Adaptation estimates one multiplier per kernel class and the network map's intercept, so the
picks should (a) span the latency range, for the intercept (and the slope), and (b) cover the
kernel mixes, so every class that carries time is seen in several networks. The picker works in
the base predictor's own view of each candidate: its predicted latency and its predicted time
share per kernel class. The candidates are cut into equal-count strata of predicted latency
(about ``sqrt(n)`` of them, so the fastest and the slowest stratum are always measured), each
stratum gets an equal share of the budget, and each stratum is cut again into as many cells of
near-equal size as it has picks, across the principal axes of ``(standardised log latency,
sqrt(class shares))`` (the square root turns shares into a Hellinger geometry, where a 5 % class
is not lost next to a 60 % one); each cell gives its medoid. Every pick stands for about the
same number of candidates, so what adapt() estimates from the picks (medians, share-weighted
means) stays representative of the pool. Evidence (v2 -> v2-rt1, ``archcast bench
adapt-kernels``): k-medoids per latency stratum (clusters of unequal size) lost to random picks at
20-100 models; these equal-size cells did not, and their medoids beat a random member per cell
at 10 models, where a random member once let adapt() overfit.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from archcast.errors import InvalidInputError


def pick_features(log_ms: np.ndarray, class_us: np.ndarray) -> np.ndarray:
    """``[n, 1 + classes]``: standardised log predicted latency, then sqrt of each class's share
    of the predicted kernel time."""
    log_ms = np.asarray(log_ms, dtype=np.float64).reshape(-1)
    class_us = np.asarray(class_us, dtype=np.float64)
    if class_us.ndim != 2 or len(class_us) != len(log_ms):
        raise InvalidInputError(f"class_us must be [n, classes] for {len(log_ms)} models, got shape {class_us.shape}")
    share = class_us / np.maximum(class_us.sum(1, keepdims=True), 1e-300)
    z = (log_ms - log_ms.mean()) / max(float(log_ms.std()), 1e-12)
    return np.column_stack([z, np.sqrt(np.clip(share, 0.0, 1.0))])


def _cells(x: np.ndarray, idx: np.ndarray, q: int) -> list[np.ndarray]:
    """``q`` cells of near-equal size covering ``idx``: recursive cuts across the principal axis
    of ``x[idx]``, each at the quantile that splits the quota (a balanced PCA tree)."""
    if len(idx) <= q:  # as many picks as candidates: each its own cell
        return [idx[i:i + 1] for i in range(len(idx))]
    if q <= 1:
        return [idx]
    z = x[idx] - x[idx].mean(0)
    axis = np.linalg.svd(z, full_matrices=False)[2][0] if len(idx) > 2 else np.eye(x.shape[1])[0]
    order = idx[np.argsort(z @ axis, kind="stable")]
    q1 = q // 2
    cut = int(round(len(order) * q1 / q))
    return _cells(x, order[:cut], q1) + _cells(x, order[cut:], q - q1)


def _medoid(x: np.ndarray) -> int:
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return int(d.sum(1).argmin())


def pick_models(log_ms: np.ndarray, class_us: np.ndarray, n: int, *, seed: int = 0,
                strata: int | None = None, within: str = "medoid") -> np.ndarray:
    """``n`` distinct candidate indices (sorted), stratified by predicted latency and spread over
    kernel mixes within each stratum (see the module docstring); deterministic for a ``seed``.
    ``strata`` defaults to ``round(sqrt(n))`` (at least 2, at most ``n``); from each cell its
    ``medoid`` (then ``seed`` only breaks rounding ties) or a ``random`` member (a stratified
    random sample)."""
    x = pick_features(log_ms, class_us)
    if not 1 <= n <= len(x):
        raise InvalidInputError(f"cannot pick n={n} models from {len(x)} candidates")
    if within not in ("random", "medoid"):
        raise InvalidInputError(f"within={within!r} must be 'random' or 'medoid'")
    n_strata = min(n, max(2, int(round(math.sqrt(n))))) if strata is None else int(strata)
    if not 1 <= n_strata <= n:
        raise InvalidInputError(f"strata={strata} must be between 1 and n={n}")
    rng = np.random.default_rng(seed)
    order = np.argsort(x[:, 0], kind="stable")
    # strata and quotas in proportion: every pick stands for about len(x) / n candidates
    bounds = np.round(np.linspace(0, len(x), n_strata + 1)).astype(int)
    quota = np.diff(np.round(np.linspace(0, n, n_strata + 1)).astype(int))
    picks = []
    for lo, hi, q in zip(bounds[:-1], bounds[1:], quota):
        for cell in _cells(x, order[lo:hi], int(q)):
            picks.append(int(cell[rng.integers(len(cell))]) if within == "random" else int(cell[_medoid(x[cell])]))
    rest = np.setdiff1d(np.arange(len(x)), picks)
    if len(picks) < n:  # a stratum smaller than its quota (rounding): random others
        picks += rng.choice(rest, n - len(picks), replace=False).tolist()
    return np.sort(np.asarray(picks))


def predicted_class_us(base: Any, graphs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(network ms [n], predicted kernel time per kernel class [n, len(CLASSES)] in µs)`` of a
    fitted ``kernels`` predictor on runtime graphs (one kernel per node)."""
    from archcast.predictors.latency.kernels import CLASSES
    from archcast.tokenizer.kernel_table import kernel_class

    graphs = list(graphs)
    ms, kernels = base.predict_with_kernels(graphs)
    out = np.zeros((len(graphs), len(CLASSES)))
    for i, (g, k) in enumerate(zip(graphs, kernels)):
        np.add.at(out[i], [CLASSES.index(kernel_class(n.op_type)) for n in g.nodes], k)
    return ms, out


def pick_for_kernels(base: Any, graphs: Sequence[Any], n: int, *, seed: int = 0) -> np.ndarray:
    """:func:`pick_models` on a fitted ``kernels`` predictor's view of the candidate runtime graphs."""
    ms, class_us = predicted_class_us(base, graphs)
    return pick_models(np.log(ms), class_us, n, seed=seed)


__all__ = ["pick_features", "pick_for_kernels", "pick_models", "predicted_class_us"]
