"""Batch-Channel Normalization and Linear Oscillation (archcast.zoo.norm_act_cnn)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from archcast.zoo.norm_act_cnn import BatchChannelNorm2d, LinOsc  # noqa: E402


def test_bcn_mixes_batch_and_channel_statistics():
    bcn = BatchChannelNorm2d(4)
    x = torch.randn(2, 4, 5, 5) * 3 + 1
    with torch.no_grad():
        bcn.alpha.fill_(1.0)
        per_channel = bcn(x)  # pure batch norm: zero mean over (N, H, W)
        bcn.alpha.fill_(0.0)
        per_sample = bcn(x)  # pure channel norm: zero mean over (C, H, W)
    torch.testing.assert_close(per_channel.mean((0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_sample.mean((1, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="stats"):
        BatchChannelNorm2d(4, stats="nope")


def test_linosc_formula():
    act = LinOsc(3)
    with torch.no_grad():
        act.alpha.fill_(2.0)
        act.beta.fill_(0.5)
    x = torch.randn(1, 3, 2, 2)
    torch.testing.assert_close(act(x), x * torch.sin(2.0 * x + 0.5))
