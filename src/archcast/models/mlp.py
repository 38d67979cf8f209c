"""A plain MLP regressor (the BANANAS-style cell baseline)."""

from __future__ import annotations

import torch
from torch import nn


class CellMLP(nn.Module):
    """``[B, F]`` cell encodings -> ``[B]``: ``layers`` ReLU layers of width ``hidden``, one output."""

    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        d = in_dim
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout)]
            d = hidden
        self.net = nn.Sequential(*mods, nn.Linear(d, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, F] -> [B]
        return self.net(x).squeeze(-1)
