"""One training loop for the torch predictors: warm-up + linear decay, validation-only selection.

Data are dicts of tensors with a leading sample axis (``x``, ``adj``, ``mask``, optional ``gf``,
``y``, optional ``twin_x``/``twin_adj``/``twin_mask`` for the consistency loss). Model selection
uses the validation dict only.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from archcast import metrics
from archcast.errors import InvalidInputError
from archcast.train import losses

LOSSES = ("rel_mse", "mse")
RANK_LOSSES = ("sr", "logistic")
SELECT = ("kendall_tau", "mape")


@dataclass
class TrainConfig:
    """Optimisation recipe (saved in checkpoints).

    Attributes:
        epochs: passes over the training set.
        batch_size: graphs per step.
        lr: peak Adam learning rate (linear warm-up over ``warmup`` of the steps, then linear decay).
        weight_decay: AdamW decoupled weight decay (0 = plain Adam, as the reference).
        loss: ``rel_mse`` (``(p/y-1)^2``, reference) or ``mse`` (on standardised targets).
        lambda_rank, rank_loss: weight and kind of the ranking term (``sr``: reference pairwise L1;
            ``logistic``: all-pairs logistic).
        lambda_cons: weight of the consistency L1 between a cell and its relabelled copy.
        eval_every: validate every this many epochs (and after the last).
        select: validation metric that picks the kept weights.
    """

    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: float = 0.1
    loss: str = "rel_mse"
    lambda_rank: float = 0.0
    rank_loss: str = "sr"
    lambda_cons: float = 0.0
    eval_every: int = 1
    select: str = "kendall_tau"

    def __post_init__(self) -> None:
        for name, val, allowed in (("loss", self.loss, LOSSES), ("rank_loss", self.rank_loss, RANK_LOSSES),
                                   ("select", self.select, SELECT)):
            if val not in allowed:
                raise ValueError(f"{name} {val!r} is not one of {allowed}")

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (None: keep the current setting), then restore.

    Small graph models run fastest on one thread, and two oversubscribed processes on a 2-core
    machine slow down 10-20x with the default thread count."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidInputError(f"num_threads={n!r} must be None or an integer >= 1")
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(old)


def _forward(net: torch.nn.Module, d: dict[str, torch.Tensor], idx: torch.Tensor | slice, prefix: str = "") -> torch.Tensor:
    gf = d.get("gf")
    return net(d[prefix + "x"][idx], d[prefix + "adj"][idx], d[prefix + "mask"][idx],
               None if gf is None else gf[idx])


@torch.inference_mode()
def predict_batched(net: torch.nn.Module, d: dict[str, torch.Tensor], batch_size: int = 1024) -> np.ndarray:
    """Model outputs for every sample of ``d`` (eval mode), as float64 numpy."""
    was = net.training
    net.eval()
    n = d["x"].shape[0]
    out = [_forward(net, d, slice(i, i + batch_size)) for i in range(0, n, batch_size)]
    net.train(was)
    return torch.cat(out).double().numpy()


def _score(select: str, y: np.ndarray, p: np.ndarray) -> float:
    """Higher is better."""
    if select == "kendall_tau":
        return metrics.kendall_tau(y, p)
    return -metrics.mape(y, p)


def train(
    net: torch.nn.Module,
    train_d: dict[str, torch.Tensor],
    val_d: dict[str, torch.Tensor],
    cfg: TrainConfig,
    *,
    seed: int = 0,
    to_target: Callable[[np.ndarray], np.ndarray] = lambda p: p,
    progress: bool = False,
) -> dict:
    """Train ``net`` in place; load the weights with the best validation score. Returns a history
    dict (``best_epoch``, ``best_val``, per-eval ``val`` scores). ``to_target`` maps model outputs
    to target units before scoring (e.g. undo standardisation)."""
    gen = torch.Generator().manual_seed(seed)
    n = train_d["x"].shape[0]
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    warm = max(1, int(cfg.warmup * total))
    if cfg.weight_decay:
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm))
    )
    base = losses.relative_mse if cfg.loss == "rel_mse" else (lambda p, t: ((p - t) ** 2).mean())
    y_val = val_d["y"].double().numpy()
    best = (-math.inf, -1, None)
    history: list[tuple[int, float]] = []
    has_twin = "twin_x" in train_d and cfg.lambda_cons > 0

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, desc="train", unit="epoch", leave=False)
    net.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(steps_per_epoch):
            idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            if idx.numel() < 2:
                continue
            y = train_d["y"][idx]
            p = _forward(net, train_d, idx)
            loss = base(p, y)
            if cfg.lambda_rank:
                rank = (losses.pairwise_rank_l1(p, y, gen) if cfg.rank_loss == "sr"
                        else losses.pairwise_logistic(p, y))
                loss = loss + cfg.lambda_rank * rank
            if has_twin:
                loss = loss + cfg.lambda_cons * losses.consistency_l1(p, _forward(net, train_d, idx, "twin_"))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % cfg.eval_every == 0 or epoch == cfg.epochs - 1:
            score = _score(cfg.select, y_val, to_target(predict_batched(net, val_d)))
            history.append((epoch, score))
            if score > best[0]:
                best = (score, epoch, copy.deepcopy(net.state_dict()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(val=f"{best[0]:.4f}")
    if bar is not None:
        bar.close()
    if best[2] is not None:
        net.load_state_dict(best[2])
    net.eval()
    return {"best_val": best[0], "best_epoch": best[1], "val": history, "steps": total}
