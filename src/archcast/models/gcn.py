"""A graph convolutional network on dense, padded batches (the BRP-NAS cell baseline)."""

from __future__ import annotations

import torch
from torch import nn


class CellGCN(nn.Module):
    """BRP-NAS-style GCN on dense padded batches ``(x [B,N,V], Â [B,N,N], mask [B,N])`` -> ``[B]``."""

    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, a, m = batch  # x [B, N, V] one-hot, a [B, N, N] normalised, m [B, N] float mask
        h = x
        for lin in self.lins:
            h = self.drop(torch.relu(a @ lin(h)))  # padding rows of a are 0 -> padded h stays 0
        pooled = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)  # [B, H]
        return self.head(pooled).squeeze(-1)
