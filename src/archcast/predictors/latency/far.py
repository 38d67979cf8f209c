"""Far from the training data, for the kernel-level predictor: a k-nearest-neighbour distance on
what a model is made of, with a threshold measured on families the reference had not seen.

Features of one model (:func:`kernel_ood_features`): ``log FLOPs``, ``log memory bytes``, ``log
params`` of the user's graph (:class:`~archcast.graph.NetGraph`'s ``flops``, ``memory_bytes``,
``params``: the data set's ``models.csv`` columns), ``log n_kernels`` of its runtime graph (the
graph :class:`~archcast.predictors.latency.kernels.KernelLatency` reads) and, per kernel class
(:data:`~archcast.predictors.latency.kernels.CLASSES`), the square root of that class's share of
the kernels. :class:`FarFromTraining` standardises them by the training models' mean and standard
deviation (+1e-9) and scores a model by its mean Euclidean distance to the ``k`` nearest training
models. The threshold comes from the training families alone: every family's models are scored
against the *other* families (an inner leave-one-family-out) and the threshold is the ``q``
quantile of those scores, so a warning means "farther from the training data than a typical
unseen family is". With a single family each model is scored against the others.

Measured on the v2 data set's leave-one-family-out benchmark (``archcast bench far-from-training``,
each fold's reference fitted without the held-out family): at ``q = 0.95`` about 5 % of held-out
models are warned, and their ``kernels`` MAPE is 2-3x that of the others (docs/benchmarks.md).

NumPy only: no torch, onnx or LightGBM import. Saved as one ``.npz`` (float32 reference, a JSON
header) inside a checkpoint directory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from archcast.errors import CheckpointError, InvalidInputError, NotFittedError
from archcast.graph import NetGraph
from archcast.predictors.latency.kernels import CLASSES
from archcast.tokenizer.kernel_table import kernel_class

SIZE_FEATURES = ("log_flops", "log_memory_bytes", "log_params", "log_n_kernels")
FEATURES = SIZE_FEATURES + tuple(f"sqrt_share_{c}" for c in CLASSES)
FILE = "kernel_ood.npz"
FORMAT = "archcast-kernel-ood"
STD_EPS = 1e-9
CHUNK = 256  # query rows per distance block: CHUNK x n_reference float64 (20 MB at 10,000 references)


def kernel_ood_features(runtime_graph: NetGraph, flops: int | None, memory_bytes: int | None,
                        params: int | None) -> np.ndarray:
    """``[len(FEATURES)]`` float64: log FLOPs / memory bytes / params of the user's graph (each at
    least 1), log of the runtime graph's kernel count (at least 1), and the square root of each
    kernel class's share of its kernels (all 0 for an empty graph)."""
    counts = np.zeros(len(CLASSES))
    index = {c: i for i, c in enumerate(CLASSES)}
    for n in runtime_graph.nodes:
        counts[index[kernel_class(n.op_type)]] += 1
    total = counts.sum()
    share = counts / total if total > 0 else counts
    size = [max(int(v or 0), 1) for v in (flops, memory_bytes, params)] + [max(len(runtime_graph.nodes), 1)]
    return np.concatenate([np.log(np.asarray(size, dtype=np.float64)), np.sqrt(share)])


def knn_mean_distance(queries: np.ndarray, reference: np.ndarray, k: int, *, query_groups: np.ndarray | None = None,
                      reference_groups: np.ndarray | None = None, exclude_self: bool = False,
                      chunk: int = CHUNK) -> np.ndarray:
    """``[len(queries)]``: each query's mean Euclidean distance to its ``k`` nearest reference rows,
    in blocks of ``chunk`` queries. Reference rows of the query's own group (``query_groups`` vs
    ``reference_groups``) or, with ``exclude_self``, the query's own row (queries *are* the
    reference) do not count; a query with fewer than ``k`` rows left averages those (NaN: none).
    The nearest rows are found from the expanded squared distance, their distances then computed
    directly (no cancellation error)."""
    q = np.asarray(queries, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise InvalidInputError(f"queries {q.shape} and reference {r.shape} need the same number of columns")
    out = np.full(len(q), np.nan)
    if len(r) == 0 or len(q) == 0:
        return out
    kk = max(1, min(int(k), len(r)))
    r_sq = (r * r).sum(1)
    for s in range(0, len(q), chunk):
        block = q[s:s + chunk]
        d2 = (block * block).sum(1)[:, None] + r_sq[None, :] - 2.0 * block @ r.T
        np.maximum(d2, 0.0, out=d2)
        if query_groups is not None and reference_groups is not None:
            d2[np.asarray(query_groups[s:s + chunk])[:, None] == np.asarray(reference_groups)[None, :]] = np.inf
        if exclude_self:
            rows = np.arange(len(block))
            d2[rows, s + rows] = np.inf
        idx = np.argpartition(d2, kk - 1, axis=1)[:, :kk]  # the k nearest, then their exact distances
        near = np.sqrt(((block[:, None, :] - r[idx]) ** 2).sum(-1))
        near[~np.isfinite(np.take_along_axis(d2, idx, axis=1))] = np.inf
        finite = np.isfinite(near)
        n = finite.sum(1)
        total = np.where(finite, near, 0.0).sum(1)
        out[s:s + chunk] = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return out


class FarFromTraining:
    """The training models' standardised features and the distance above which a model is far
    from them (see the module docstring). ``fit(features, families)`` learns ``mean_``, ``std_``,
    ``reference_`` (float32 ``[n, d]``), ``inner_scores_`` (the inner leave-one-family-out scores,
    not saved) and ``threshold_``; ``score(x)`` / ``is_far(x)`` take one feature row or many."""

    def __init__(self, k: int = 5, q: float = 0.95):
        self.k = k
        self.q = q

    # ------------------------------------------------------------------------------- fit
    def fit(self, features: Any, families: Sequence[str]) -> "FarFromTraining":
        x = np.asarray(features, dtype=np.float64)
        fam = np.asarray([str(f) for f in families])
        if not (isinstance(self.k, (int, np.integer)) and self.k >= 1):
            raise InvalidInputError(f"k must be an integer >= 1; got {self.k!r}")
        if not (0.0 < float(self.q) < 1.0):
            raise InvalidInputError(f"q must be in (0, 1); got {self.q!r}")
        if x.ndim != 2 or x.shape[0] < 2 or len(fam) != x.shape[0] or not np.all(np.isfinite(x)):
            raise InvalidInputError(f"features must be a finite [n >= 2, d] matrix with one family per row; got "
                                    f"{x.shape} and {len(fam)} families")
        self.mean_ = x.mean(0)
        self.std_ = x.std(0) + STD_EPS
        self.reference_ = ((x - self.mean_) / self.std_).astype(np.float32)
        self.families_ = sorted(set(fam.tolist()))
        if len(self.families_) > 1:
            self.inner_scores_ = knn_mean_distance(self.reference_, self.reference_, self.k, query_groups=fam,
                                                   reference_groups=fam)
            self.inner_rule_ = "leave-one-family-out"
        else:
            self.inner_scores_ = knn_mean_distance(self.reference_, self.reference_, self.k, exclude_self=True)
            self.inner_rule_ = "leave-one-model-out (one family)"
        self.threshold_ = self.threshold_at(self.q)
        return self

    def threshold_at(self, q: float) -> float:
        """The ``q`` quantile of the inner leave-one-family-out scores (``fit`` only: not saved)."""
        scores = getattr(self, "inner_scores_", None)
        if scores is None:
            raise NotFittedError("threshold_at needs the inner scores of fit(); a loaded reference has threshold_ only")
        return float(np.quantile(scores[np.isfinite(scores)], q))

    def is_fitted(self) -> bool:
        return hasattr(self, "reference_")

    # ------------------------------------------------------------------------------- use
    def _z(self, x: Any) -> np.ndarray:
        if not self.is_fitted():
            raise NotFittedError("FarFromTraining is not fitted: fit() it or load() one")
        a = np.asarray(x, dtype=np.float64)
        rows = a.reshape(1, -1) if a.ndim == 1 else a
        if rows.ndim != 2 or rows.shape[1] != self.reference_.shape[1]:
            raise InvalidInputError(f"features have shape {a.shape}; expected [..., {self.reference_.shape[1]}]")
        return (rows - self.mean_) / self.std_

    def score(self, x: Any) -> Any:
        """Mean distance to the ``k`` nearest training models: a float for one row, else ``[n]``."""
        s = knn_mean_distance(self._z(x), self.reference_, self.k)
        return float(s[0]) if np.asarray(x).ndim == 1 else s

    def is_far(self, x: Any) -> Any:
        s = self.score(x)
        return bool(s > self.threshold_) if np.ndim(s) == 0 else s > self.threshold_

    # ------------------------------------------------------------------------------- files
    def header(self) -> dict[str, Any]:
        """What describes the reference (JSON-able): features, k, q, threshold, sizes."""
        return {"format": FORMAT, "version": 1, "features": list(FEATURES), "k": int(self.k), "q": float(self.q),
                "threshold": float(self.threshold_), "n_reference": int(self.reference_.shape[0]),
                "families": list(self.families_), "inner_rule": getattr(self, "inner_rule_", "leave-one-family-out"),
                "std_eps": STD_EPS}

    def to_dict(self) -> dict[str, Any]:
        return {**self.header(), "mean": self.mean_.tolist(), "std": self.std_.tolist(),
                "reference": self.reference_.tolist()}

    @classmethod
    def from_dict(cls, d: Any, where: str = "reference") -> "FarFromTraining":
        try:
            if d.get("format") != FORMAT or list(d["features"]) != list(FEATURES):
                raise CheckpointError(f"{where} is not a kernel OOD reference of this archcast version (features "
                                      f"{d.get('features')})")
            self = cls(k=int(d["k"]), q=float(d["q"]))
            self.mean_ = np.asarray(d["mean"], dtype=np.float64).reshape(len(FEATURES))
            self.std_ = np.asarray(d["std"], dtype=np.float64).reshape(len(FEATURES))
            self.reference_ = np.asarray(d["reference"], dtype=np.float32).reshape(-1, len(FEATURES))
            self.threshold_ = float(d["threshold"])
            self.families_ = [str(f) for f in d.get("families", [])]
            self.inner_rule_ = str(d.get("inner_rule", "leave-one-family-out"))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{where} is incomplete or damaged: {e!r}") from None
        if (self.reference_.shape[0] == 0 or not math.isfinite(self.threshold_) or self.k < 1
                or not np.all(np.isfinite(self.reference_)) or not np.all(self.std_ > 0)):
            raise CheckpointError(f"{where} is damaged (empty reference, non-finite values or k < 1)")
        return self

    def save(self, directory: str | Path, name: str = FILE) -> Path:
        """``directory/name``: an ``.npz`` of ``mean``, ``std``, ``reference`` (float32) and the
        JSON :meth:`header`; returns its path."""
        if not self.is_fitted():
            raise NotFittedError("FarFromTraining is not fitted: nothing to save")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        path = d / name
        with open(path, "wb") as f:
            np.savez_compressed(f, mean=self.mean_, std=self.std_, reference=self.reference_,
                                header=np.array(json.dumps(self.header(), sort_keys=True)))
        return path

    @classmethod
    def load(cls, directory: str | Path, name: str = FILE) -> "FarFromTraining":
        path = Path(directory) / name
        try:
            with np.load(path, allow_pickle=False) as z:
                d = {**json.loads(str(z["header"])), "mean": z["mean"], "std": z["std"], "reference": z["reference"]}
        except (OSError, KeyError, ValueError) as e:
            raise CheckpointError(f"the kernel OOD reference {str(path)!r} cannot be read: {e}") from None
        return cls.from_dict(d, repr(str(path)))


__all__ = ["FEATURES", "FILE", "FarFromTraining", "kernel_ood_features", "knn_mean_distance"]
