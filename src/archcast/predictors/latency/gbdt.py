"""``gbdt``: LightGBM on a fixed-length table of each network (log costs, op histogram, FLOPs shares)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from archcast.predictors.base import register_predictor
from archcast.predictors.latency.network import LatencyPredictor
from archcast.tokenizer.tabular import graph_table


@register_predictor("latency", "gbdt")
class GBDTLatency(LatencyPredictor):
    name = "gbdt"
    DEFAULTS: ClassVar[dict[str, Any]] = {"n_estimators": 2000, "learning_rate": 0.03, "num_leaves": 31,
                                          "min_child_samples": 10, "early_stopping": 100}

    def _fit(self, graphs, y, val_graphs, val_y, init_from):
        import lightgbm as lgb

        x, self.columns_ = graph_table(graphs)
        xv, _ = graph_table(val_graphs)
        hp = self.hp
        self.model_ = lgb.LGBMRegressor(
            n_estimators=hp["n_estimators"], learning_rate=hp["learning_rate"], num_leaves=hp["num_leaves"],
            min_child_samples=hp["min_child_samples"], subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            random_state=self.seed, n_jobs=1, verbose=-1)
        import inspect

        # lightgbm >= 4.7 names the validation data eval_X/eval_y (eval_set is deprecated there)
        if "eval_X" in inspect.signature(self.model_.fit).parameters:
            evals: dict[str, Any] = {"eval_X": (xv,), "eval_y": (np.log(val_y),)}
        else:
            evals = {"eval_set": [(xv, np.log(val_y))]}
        self.model_.fit(x, np.log(y), callbacks=[lgb.early_stopping(hp["early_stopping"], verbose=False)], **evals)

    def _predict(self, graphs):
        x, _ = graph_table(graphs)
        return np.exp(self.model_.predict(x))
