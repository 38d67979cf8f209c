"""``"lgbm"``: a LightGBM regressor on hand-made cell features.

Features = adjacency encoding (strictly-upper-triangular adjacency ‖ per-position op one-hot) ‖
op counts ‖ **path encoding**: how often each input→output op sequence occurs among the cell's
paths. The path vocabulary is fixed at ``fit`` from the training cells (sorted, so deterministic);
paths unseen in training are ignored at predict time. Boosting rounds are chosen on the validation
split with ``lightgbm.early_stopping``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, Sequence

import numpy as np

from archcast.graph import NetGraph
from archcast.predictors.accuracy.torch_cell import ZScore
from archcast.predictors.base import Predictor, register_predictor
from archcast.tokenizer.cell import CellArrays, space_of
from archcast.tokenizer.cell_features import adjacency_encoding, encode_cells, op_counts

Path = tuple[str, ...]  # op types of the nodes strictly between input and output


def cell_paths(arrays: CellArrays) -> list[Counter[Path]]:
    """Per cell, a count of every input→output path's op sequence (DFS over the directed DAG)."""
    vocab = arrays.space.vocabulary
    in_id, out_id = vocab.index("input") + 1, vocab.index("output") + 1
    result: list[Counter[Path]] = []
    for k in range(len(arrays.op_ids)):
        ops, succ = arrays.op_ids[k], [np.flatnonzero(row) for row in arrays.adj[k]]
        counts: Counter[Path] = Counter()
        stack: list[tuple[int, Path]] = [(int(s), ()) for s in np.flatnonzero(ops == in_id)]
        while stack:
            node, path = stack.pop()
            for nxt in succ[node]:
                op = int(ops[nxt])
                if op == out_id:
                    counts[path] += 1
                elif op != in_id:
                    stack.append((int(nxt), path + (vocab[op - 1],)))
        result.append(counts)
    return result


def path_encoding(paths: Sequence[Counter[Path]], vocabulary: Sequence[Path]) -> np.ndarray:
    """``[B, len(vocabulary)]`` float32 path counts; paths outside ``vocabulary`` are dropped."""
    col = {p: j for j, p in enumerate(vocabulary)}
    out = np.zeros((len(paths), len(vocabulary)), dtype=np.float32)
    for i, c in enumerate(paths):
        for p, n in c.items():
            if p in col:
                out[i, col[p]] = n
    return out


@register_predictor("accuracy", "lgbm")
class LGBMPredictor(Predictor):
    """LightGBM on adjacency + op-count + path features.

    Hyper-parameters are LightGBM's (``n_estimators`` is the most boosting rounds tried; the best
    count on the validation split is kept, after ``early_stopping_rounds`` rounds without
    improvement in validation L2). Training runs through ``lightgbm.train`` with
    ``deterministic=True``, ``force_row_wise=True``, ``seed=seed``. Fitted state: ``model_``,
    ``space_``, ``paths_`` (the path vocabulary), ``zscore_``, ``hparams_``, ``best_iteration_``.
    """

    name = "lgbm"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "n_estimators": 5000,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 10,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "early_stopping_rounds": 200,
        "n_jobs": 2,
    }

    def _matrix(self, arrays: CellArrays, vocabulary: Sequence[Path]) -> np.ndarray:
        return np.concatenate(
            [adjacency_encoding(arrays), op_counts(arrays), path_encoding(cell_paths(arrays), vocabulary)], axis=1
        )

    def _fit(self, graphs, y, val_graphs, val_y, init_from) -> None:
        import lightgbm as lgb

        hp = self.hparams_
        space = space_of(list(graphs) + list(val_graphs))
        tr = encode_cells(graphs, space)
        vocabulary = sorted(set().union(*cell_paths(tr)))
        zs = ZScore.fit(y)
        params = {k: v for k, v in hp.items() if k not in ("n_estimators", "early_stopping_rounds")}
        params.update(objective="regression", metric="l2", seed=self.seed, deterministic=True,
                      force_row_wise=True, verbose=-1)
        train_set = lgb.Dataset(self._matrix(tr, vocabulary), zs.transform(y))
        val_x = self._matrix(encode_cells(val_graphs, space), vocabulary)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=hp["n_estimators"],
            valid_sets=[lgb.Dataset(val_x, zs.transform(val_y), reference=train_set)],
            callbacks=[lgb.early_stopping(hp["early_stopping_rounds"], first_metric_only=True, verbose=False)],
        )
        self.model_, self.space_, self.paths_, self.zscore_ = booster, space, vocabulary, zs
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())

    def _predict(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        x = self._matrix(encode_cells(graphs, self.space_), self.paths_)
        return self.zscore_.inverse(self.model_.predict(x, num_iteration=self.best_iteration_))
