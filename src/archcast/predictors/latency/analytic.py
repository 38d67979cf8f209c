"""Analytic baselines: latency as a function of FLOPs (and memory traffic) alone."""

from __future__ import annotations

import numpy as np

from archcast.predictors.base import register_predictor
from archcast.predictors.latency.network import LatencyPredictor
from archcast.tokenizer import batching as F_


@register_predictor("latency", "flops-linear")
class FlopsLinear(LatencyPredictor):
    name = "flops-linear"

    def _fit(self, graphs, y, val_graphs, val_y, init_from):
        x = np.log10(1.0 + np.array([g.flops for g in graphs], dtype=np.float64))
        a = np.stack([np.ones_like(x), x], 1)
        self.coef_ = np.linalg.lstsq(a, np.log(y), rcond=None)[0]

    def _predict(self, graphs):
        F_.check_networks(graphs)
        x = np.log10(1.0 + np.array([g.flops for g in graphs], dtype=np.float64))
        return np.exp(self.coef_[0] + self.coef_[1] * x)

@register_predictor("latency", "flops-mem-linear")
class FlopsMemLinear(LatencyPredictor):
    name = "flops-mem-linear"

    @staticmethod
    def _x(graphs) -> np.ndarray:
        return np.array([[1.0, g.flops / 1e9, g.memory_bytes / 1e6] for g in graphs], dtype=np.float64)

    def _fit(self, graphs, y, val_graphs, val_y, init_from):
        from scipy.optimize import nnls

        x = self._x(graphs)
        self.coef_ = nnls(x / y[:, None], np.ones_like(y))[0]  # minimises sum((p/y - 1)^2)

    def _predict(self, graphs):
        F_.check_networks(graphs)
        return np.maximum(self._x(graphs) @ self.coef_, 1e-6)
