"""The one training loop: schedule, clipping, early stopping, best-weights selection, history."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from archcast.errors import InvalidInputError
from archcast.train.loop import History, LoopConfig, fit_loop


def test_linear_schedule_warms_up_then_decays_to_the_floor():
    cfg = LoopConfig(epochs=10, lr=1.0, warmup=0.1, lr_floor=0.02, steps_per_epoch=10)
    f = [cfg.lr_factor(s) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[9:], f[10:]))  # monotone decay after warm-up
    assert min(f) == pytest.approx(0.02)
    assert LoopConfig(epochs=3, lr=1.0, schedule="constant").lr_factor(7) == 1.0


@pytest.mark.parametrize("kw,match", [({"optimizer": "sgd"}, "optimizer"), ({"schedule": "cos"}, "schedule"),
                                      ({"epochs": 0}, "epochs"), ({"lr": math.nan}, "lr")])
def test_bad_config_is_named(kw, match):
    with pytest.raises(InvalidInputError, match=match):
        LoopConfig(**{"epochs": 1, "lr": 1e-3, **kw})


def _regression():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    return x, y


def test_learns_keeps_the_best_epoch_and_reports_history():
    x, y = _regression()
    net = torch.nn.Linear(3, 1)
    batches = lambda _e: [torch.arange(i, i + 16) for i in range(0, 64, 16)]  # noqa: E731
    loss = lambda idx: ((net(x[idx]).squeeze(-1) - y[idx]) ** 2).mean()  # noqa: E731
    score = lambda: -float(((net(x).squeeze(-1) - y) ** 2).mean().detach())  # noqa: E731
    start = score()
    hist = fit_loop(net, batches, loss, score, LoopConfig(epochs=30, lr=0.05, optimizer="adamw", steps_per_epoch=4))
    assert isinstance(hist, History) and hist.steps == 120 and len(hist.scores) == 30
    assert hist.best_score == max(s for _, s in hist.scores) and hist.best_score > start / 10
    assert score() == pytest.approx(hist.best_score, rel=1e-6)  # the best weights were loaded
    assert not net.training


def test_early_stopping_and_clipping():
    x, y = _regression()
    net = torch.nn.Linear(3, 1)
    calls = []
    scores = iter([1.0, 0.5, 0.4, 0.3, 0.2, 0.1])  # best at the first evaluation, then worse

    def score():
        calls.append(net.weight.detach().clone())
        return next(scores)

    loss = lambda idx: ((net(x[idx]).squeeze(-1) - 1e6 * y[idx]) ** 2).mean()  # noqa: E731
    w0 = net.weight.detach().clone()
    hist = fit_loop(net, lambda _e: [torch.arange(64)], loss, score,
                    LoopConfig(epochs=6, lr=0.1, patience=2, clip_grad_norm=1e-3, schedule="constant"))
    assert hist.stopped_early and len(calls) == 3 and hist.best_epoch == 0
    assert torch.equal(net.weight.detach(), calls[0])  # the epoch-0 weights were restored
    assert not torch.equal(calls[0], calls[2])  # and training did move them afterwards
    # a huge loss with the gradient norm clipped to 1e-3: Adam's step stays ~lr, weights stay finite
    assert np.all(np.isfinite(net.weight.detach().numpy()))
    assert float((calls[0] - w0).abs().max()) <= 0.1 + 1e-6
