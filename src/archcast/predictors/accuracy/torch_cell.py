"""What the cell baselines share: hyper-parameter checks, z-scored targets, validation scores, and
the validation-selected training loop of the torch models (:class:`TorchCellPredictor`).

Model selection only ever looks at the validation split handed to ``fit``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph
from archcast.graph.spaces import SearchSpace
from archcast.predictors._cell_features import encode_cells
from archcast.predictors.base import Predictor, check_xy
from archcast.tokenizer.cell import CellArrays, space_of
from archcast.train.loop import torch_threads

SELECT_METRICS = ("kendall", "mse")
# numeric hyper-parameters allowed to be 0; every other numeric one must be > 0
NONNEGATIVE_HPARAMS = frozenset({"weight_decay", "dropout", "reg_lambda", "reg_alpha", "min_split_gain"})


# ---------------------------------------------------------------------------------- validation
def resolve_hparams(
    name: str,
    defaults: Mapping[str, Any],
    given: Mapping[str, Any],
    choices: Mapping[str, Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """``defaults`` overridden by ``given``; raise :class:`InvalidInputError` naming the parameter,
    the value received and what is allowed for unknown names, bad choices or non-positive numbers."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise InvalidInputError(
            f"predictor {name!r} got unknown hyper-parameter(s) {unknown}; valid: {', '.join(sorted(defaults))}"
        )
    hp = {**defaults, **given}
    for key, allowed in (choices or {}).items():
        if hp[key] not in allowed:
            raise InvalidInputError(f"predictor {name!r}: {key}={hp[key]!r} is not one of {tuple(allowed)}")
    for key, default in defaults.items():
        v = hp[key]
        if isinstance(default, Real) and not isinstance(default, bool) and v is not None:
            floor_ok = v >= 0 if key in NONNEGATIVE_HPARAMS else v > 0
            if not (isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and floor_ok):
                bound = ">= 0" if key in NONNEGATIVE_HPARAMS else "> 0"
                raise InvalidInputError(f"predictor {name!r}: {key}={v!r} must be a finite number {bound}")
            if isinstance(default, int) and not isinstance(v, int):
                raise InvalidInputError(f"predictor {name!r}: {key}={v!r} must be an integer")
    return hp


def check_val(val_graphs: Sequence[NetGraph], val_y: np.ndarray) -> np.ndarray:
    """Validate the validation split (used to select epochs)."""
    return check_xy(val_graphs, val_y, "validation")


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
@dataclass
class FitRecord:
    """What the training loop did: ``val_scores[e]`` is the score after epoch ``e`` (0-based)."""

    best_epoch: int = -1
    best_score: float = -math.inf
    val_scores: list[float] = field(default_factory=list)


def predict_torch(model: nn.Module, make_batch: Callable[[np.ndarray], Any], n: int, chunk: int = 4096) -> np.ndarray:
    """``[n]`` float64 outputs of ``model(make_batch(idx))`` over ``idx`` chunks, in eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, n, chunk):
            out.append(model(make_batch(np.arange(start, min(start + chunk, n)))).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def fit_torch(
    model: nn.Module,
    train_batch: Callable[[np.ndarray], Any],
    y_train: np.ndarray,
    val_batch: Callable[[np.ndarray], Any],
    y_val: np.ndarray,
    *,
    lr: float,
    weight_decay: float,
    batch_size: int,
    max_epochs: int,
    patience: int,
    select: str,
    rng: np.random.Generator,
) -> FitRecord:
    """Adam + MSE on ``y_train`` (already z-scored); after every epoch score the validation split
    (``y_val`` in the same z units) and keep the best weights; stop after ``patience`` epochs
    without improvement. ``model`` is left holding the best epoch's weights, in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
    yt = torch.as_tensor(y_train, dtype=torch.float32)
    n = len(y_train)
    rec = FitRecord()
    best_state: dict[str, torch.Tensor] = {}
    for epoch in range(max_epochs):
        model.train()
        perm = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            if len(idx) < 2 and n >= 2:  # a 1-sample batch adds noise (and breaks BatchNorm-like layers)
                continue
            loss = torch.mean((model(train_batch(idx)) - yt[idx]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        score = val_score(y_val, predict_torch(model, val_batch, len(y_val)), select)
        rec.val_scores.append(score)
        if rec.best_epoch < 0 or score > rec.best_score:
            rec.best_epoch, rec.best_score = epoch, score
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - rec.best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return rec


class TorchCellPredictor(Predictor):
    """Template for torch cell baselines: subclasses give defaults and three hooks.

    Hooks: ``_features(arrays)`` turns :class:`CellArrays` into model-ready features for all
    graphs; ``_batch(features, idx)`` selects a mini-batch from them; ``_build(space, hp)`` makes
    the ``nn.Module`` mapping a batch to ``[b]`` z-scored predictions (``N = space.max_nodes`` nodes,
    ``V = len(space.vocabulary)`` op types).

    Common hyper-parameters: ``lr``, ``weight_decay``, ``batch_size``, ``max_epochs``,
    ``patience`` (epochs without validation improvement before stopping), ``select`` (validation
    metric: ``"kendall"`` τ or ``"mse"``), ``num_threads`` (torch intra-op threads during
    fit/predict; None keeps the environment's setting).

    Fitted state: ``model_``, ``space_``, ``zscore_``, ``hparams_``, ``fit_record_``.
    """

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "lr": 1e-3,
        "weight_decay": 0.0,
        "batch_size": 32,
        "max_epochs": 300,
        "patience": 30,
        "select": "kendall",
        "num_threads": None,
    }
    CHOICES: ClassVar[dict[str, Sequence[Any]]] = {"select": SELECT_METRICS}

    def _features(self, arrays: CellArrays) -> Any:
        raise NotImplementedError

    def _batch(self, feats: Any, idx: np.ndarray) -> Any:
        raise NotImplementedError

    def _build(self, space: SearchSpace, hp: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def fit(
        self,
        graphs: Sequence[NetGraph],
        y: np.ndarray,
        val_graphs: Sequence[NetGraph],
        val_y: np.ndarray,
    ) -> "TorchCellPredictor":
        hp = resolve_hparams(self.name, self.DEFAULTS, self.hparams, self.CHOICES)
        y = check_xy(graphs, y)
        val_y = check_val(val_graphs, val_y)
        space = space_of(list(graphs) + list(val_graphs))
        tr = self._features(encode_cells(graphs, space))
        va = self._features(encode_cells(val_graphs, space))
        zs = ZScore.fit(y)
        with torch_threads(hp["num_threads"]), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # inside fork_rng: the caller's global RNG is left untouched
            model = self._build(space, hp)
            rec = fit_torch(
                model,
                lambda idx: self._batch(tr, idx),
                zs.transform(y),
                lambda idx: self._batch(va, idx),
                zs.transform(val_y),
                lr=hp["lr"],
                weight_decay=hp["weight_decay"],
                batch_size=hp["batch_size"],
                max_epochs=hp["max_epochs"],
                patience=hp["patience"],
                select=hp["select"],
                rng=np.random.default_rng(self.seed),
            )
        self.model_, self.space_, self.zscore_, self.hparams_, self.fit_record_ = model, space, zs, hp, rec
        return self

    def _predict(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        feats = self._features(encode_cells(graphs, self.space_))
        with torch_threads(self.hparams_["num_threads"]):
            z = predict_torch(self.model_, lambda idx: self._batch(feats, idx), len(graphs))
        return self.zscore_.inverse(z)
