"""The one training loop of every torch predictor (cells, baselines, latency networks).

A predictor supplies three callables and a :class:`LoopConfig`; the loop owns the optimiser, the
learning-rate schedule, gradient clipping, validation after every ``eval_every`` epochs, early
stopping and keeping the best weights. It returns a typed :class:`History`.

* ``batches(epoch)`` yields the epoch's mini-batches (any object the loss understands); the
  predictor owns its data order (and its RNG), so recipes stay reproducible per seed;
* ``loss(batch)`` returns the scalar loss of one batch (the model in train mode);
* ``evaluate()`` scores the validation split, **higher is better** (e.g. Kendall tau, or minus the
  MAPE); only validation data may be looked at here.

>>> LoopConfig(epochs=2, lr=1e-3).schedule
'linear'
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from archcast.errors import InvalidInputError

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("linear", "constant")


@dataclass(frozen=True)
class LoopConfig:
    """How to optimise (not what): one vocabulary for every predictor's recipe.

    Attributes:
        epochs: passes over the training data.
        lr: peak learning rate.
        weight_decay: ``adamw``: decoupled decay; ``adam``: L2 penalty (torch's Adam semantics).
        optimizer: ``adam`` or ``adamw``.
        schedule: ``linear`` (linear warm-up over ``warmup`` of the steps, then linear decay to
            ``lr_floor`` x lr) or ``constant``.
        warmup: fraction of all steps spent warming up (``linear`` only).
        lr_floor: the decay stops at this fraction of ``lr``.
        clip_grad_norm: clip the global gradient norm to this value (None: no clipping).
        patience: stop after this many evaluations without a better score (None: run all epochs).
        eval_every: evaluate every this many epochs (and always after the last).
        steps_per_epoch: batches one epoch yields (sets the schedule's length).
    """

    epochs: int
    lr: float
    weight_decay: float = 0.0
    optimizer: str = "adam"
    schedule: str = "linear"
    warmup: float = 0.0
    lr_floor: float = 0.0
    clip_grad_norm: float | None = None
    patience: int | None = None
    eval_every: int = 1
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise InvalidInputError(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise InvalidInputError(f"schedule {self.schedule!r} is not one of {SCHEDULES}")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise InvalidInputError(f"epochs={self.epochs!r} must be an integer >= 1")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise InvalidInputError(f"lr={self.lr!r} must be a finite number > 0")

    def lr_factor(self, step: int) -> float:
        """Multiplier of ``lr`` at optimiser step ``step`` (0-based)."""
        if self.schedule == "constant":
            return 1.0
        total = max(1, self.steps_per_epoch * self.epochs)
        warm = max(1, int(self.warmup * total))
        if step < warm:
            return (step + 1) / warm
        return max(self.lr_floor, (total - step) / max(1, total - warm))


@dataclass
class History:
    """What the loop did. ``scores`` holds ``(epoch, validation score)`` per evaluation."""

    best_epoch: int = -1
    best_score: float = -math.inf
    scores: list[tuple[int, float]] = field(default_factory=list)
    steps: int = 0
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_loop(net: Any, batches: Callable[[int], Iterable[Any]], loss: Callable[[Any], Any],
             evaluate: Callable[[], float], cfg: LoopConfig, *, progress: bool = False,
             desc: str = "train") -> History:
    """Train ``net`` in place and load the weights of the best evaluation; ``net`` ends in eval mode."""
    import torch

    params = [p for p in net.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cfg.lr_factor)
    hist = History()
    best_state: dict[str, Any] | None = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, desc=desc, unit="epoch", leave=False)
    for epoch in range(cfg.epochs):
        net.train()
        for batch in batches(epoch):
            value = loss(batch)
            opt.zero_grad(set_to_none=True)
            value.backward()
            if cfg.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
            opt.step()
            sched.step()
            hist.steps += 1
        if (epoch + 1) % cfg.eval_every == 0 or epoch == cfg.epochs - 1:
            net.eval()
            score = float(evaluate())
            hist.scores.append((epoch, score))
            if hist.best_epoch < 0 or score > hist.best_score:
                hist.best_epoch, hist.best_score = epoch, score
                best_state = copy.deepcopy(net.state_dict())
            elif cfg.patience is not None and len(hist.scores) - 1 - _eval_index(hist) >= cfg.patience:
                hist.stopped_early = True
                break
        if bar is not None:
            bar.update(1)
            bar.set_postfix(val=f"{hist.best_score:.4f}")
    if bar is not None:
        bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return hist


def _eval_index(hist: History) -> int:
    """Index in ``hist.scores`` of the best evaluation."""
    return next(i for i, (e, _) in enumerate(hist.scores) if e == hist.best_epoch)


__all__ = ["History", "LoopConfig", "fit_loop"]
