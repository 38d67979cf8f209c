"""What the torch cell baselines share: z-scored targets, validation scores, and the template
:class:`TorchCellPredictor` (training runs through :func:`archcast.train.loop.fit_loop`).

Model selection only ever looks at the validation split handed to ``fit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn

from archcast._torch import torch_threads
from archcast.errors import InvalidInputError
from archcast.graph import NetGraph
from archcast.graph.spaces import SearchSpace
from archcast.predictors.base import Predictor
from archcast.tokenizer.cell import CellArrays, space_of
from archcast.tokenizer.cell_features import encode_cells

SELECT_METRICS = ("kendall", "mse")
# numeric hyper-parameters allowed to be 0; every other numeric one must be > 0
NONNEGATIVE_HPARAMS = frozenset({"weight_decay", "dropout", "reg_lambda", "reg_alpha", "min_split_gain"})


# ---------------------------------------------------------------------------------- targets, scores
@dataclass(frozen=True)
class ZScore:
    """Target standardisation: ``z = (y - mean) / std`` (``std`` = 1 for constant targets)."""

    mean: float
    std: float

    @classmethod
    def fit(cls, y: np.ndarray) -> "ZScore":
        std = float(np.std(y))
        return cls(float(np.mean(y)), std if std > 0 and math.isfinite(std) else 1.0)

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.std + self.mean


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall τ-b (``scipy.stats.kendalltau``); NaN when either side is constant."""
    return float(kendalltau(y_true, y_pred).statistic)


def val_score(y_true: np.ndarray, y_pred: np.ndarray, select: str) -> float:
    """Higher is better: Kendall τ (NaN counts as -inf) or the negated MSE."""
    if select == "kendall":
        tau = kendall_tau(y_true, y_pred)
        return tau if math.isfinite(tau) else -math.inf
    if select == "mse":
        return -float(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2))
    raise InvalidInputError(f"select={select!r} is not one of {SELECT_METRICS}")


# ---------------------------------------------------------------------------------- torch loop
def predict_torch(model: nn.Module, make_batch: Callable[[np.ndarray], Any], n: int, chunk: int = 4096) -> np.ndarray:
    """``[n]`` float64 outputs of ``model(make_batch(idx))`` over ``idx`` chunks, in eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, n, chunk):
            out.append(model(make_batch(np.arange(start, min(start + chunk, n)))).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


class TorchCellPredictor(Predictor):
    """Template for torch cell baselines: subclasses give defaults and three hooks.

    Hooks: ``_features(arrays)`` turns :class:`CellArrays` into model-ready features for all
    graphs; ``_batch(features, idx)`` selects a mini-batch from them; ``_build(space, hp)`` makes
    the ``nn.Module`` mapping a batch to ``[b]`` z-scored predictions (``N = space.max_nodes`` nodes,
    ``V = len(space.vocabulary)`` op types).

    Common hyper-parameters: ``lr``, ``weight_decay``, ``batch_size``, ``max_epochs``,
    ``patience`` (epochs without validation improvement before stopping), ``select`` (validation
    metric: ``"kendall"`` τ or ``"mse"``), ``threads`` (torch intra-op threads during
    fit/predict; None keeps the environment's setting).

    Fitted state: ``model_``, ``space_``, ``zscore_``, ``hparams_``, ``history_``.
    """

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "weight_decay": 0.0,
        "batch_size": 32,
        "epochs": 300,
        "patience": 30,
        "select": "kendall",
        "threads": None,
    }
    CHOICES: ClassVar[dict[str, Sequence[Any]]] = {"select": SELECT_METRICS}

    def _features(self, arrays: CellArrays) -> Any:
        raise NotImplementedError

    def _batch(self, feats: Any, idx: np.ndarray) -> Any:
        raise NotImplementedError

    def _build(self, space: SearchSpace, hp: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def _fit(self, graphs, y, val_graphs, val_y, init_from) -> None:
        from archcast.train.loop import LoopConfig, fit_loop

        hp = self.hparams_
        space = space_of(list(graphs) + list(val_graphs))
        tr = self._features(encode_cells(graphs, space))
        va = self._features(encode_cells(val_graphs, space))
        zs = ZScore.fit(y)
        y_z = torch.as_tensor(zs.transform(y), dtype=torch.float32)
        val_z = zs.transform(val_y)
        n, bs = len(y), hp["batch_size"]
        rng = np.random.default_rng(self.seed)

        def batches(_epoch: int):
            perm = rng.permutation(n)
            for start in range(0, n, bs):
                idx = perm[start:start + bs]
                if len(idx) >= 2 or n < 2:  # a 1-sample batch adds noise (and breaks BatchNorm-like layers)
                    yield idx

        with torch_threads(hp["threads"]), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # inside fork_rng: the caller's global RNG is left untouched
            model = self._build(space, hp)
            loss = lambda idx: torch.mean((model(self._batch(tr, idx)) - y_z[idx]) ** 2)  # noqa: E731
            score = lambda: val_score(val_z, predict_torch(model, lambda i: self._batch(va, i), len(val_z)),  # noqa: E731
                                      hp["select"])
            cfg = LoopConfig(epochs=hp["epochs"], lr=hp["lr"], weight_decay=hp["weight_decay"], optimizer="adam",
                             schedule="constant", patience=hp["patience"])
            self.history_ = fit_loop(model, batches, loss, score, cfg)
        self.model_, self.space_, self.zscore_ = model, space, zs

    def _predict(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        feats = self._features(encode_cells(graphs, self.space_))
        with torch_threads(self.hparams_["threads"]):
            z = predict_torch(self.model_, lambda idx: self._batch(feats, idx), len(graphs))
        return self.zscore_.inverse(z)
