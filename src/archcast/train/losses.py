"""Training losses (docs/design.md §2). All take ``pred``/``target`` of shape ``[B]``."""

from __future__ import annotations

import torch


def relative_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean((pred/target - 1)^2)``: scale-free, the reference latency/accuracy loss."""
    return ((pred / target - 1.0) ** 2).mean()


def pairwise_rank_l1(pred: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ranking-consistency term: L1 between pairwise differences of predictions and of targets,
    pairs formed by a random permutation of the batch (the reference "SR" loss)."""
    perm = torch.randperm(pred.shape[0], generator=generator)
    return ((pred - pred[perm]) - (target - target[perm])).abs().mean()


def pairwise_logistic(pred: torch.Tensor, target: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """All-pairs logistic ranking loss: ``log(1 + exp(-(p_i - p_j)))`` for pairs with ``t_i > t_j``,
    weighted by ``|t_i - t_j|`` normalised to mean 1 (ties ignored)."""
    dt = target.unsqueeze(1) - target.unsqueeze(0)
    dp = pred.unsqueeze(1) - pred.unsqueeze(0)
    sel = dt > margin
    if not bool(sel.any()):
        return pred.sum() * 0.0
    w = dt[sel]
    w = w / w.mean()
    return (torch.nn.functional.softplus(-dp[sel]) * w).mean()


def consistency_l1(pred: torch.Tensor, pred_twin: torch.Tensor) -> torch.Tensor:
    """L1 between predictions for a cell and for its relabelled isomorphic copy."""
    return (pred - pred_twin).abs().mean()
