"""GraphSAGE regressors built on torch-geometric (the NNLP-style baselines)."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import SAGEConv, global_add_pool, global_mean_pool


class CellSAGE(nn.Module):
    """Two ``SAGEConv`` layers, sum/mean readout, MLP head: a torch-geometric ``Batch`` -> ``[num_graphs]``."""

    def __init__(self, in_dim: int, hidden: int, readout: str, dropout: float) -> None:
        super().__init__()
        self.conv1 = SAGEConv(in_dim, hidden)
        self.conv2 = SAGEConv(hidden, hidden)
        self.pool = global_add_pool if readout == "sum" else global_mean_pool
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, b: Batch) -> torch.Tensor:  # b.x [n_total, V] -> [num_graphs]
        h = self.drop(torch.relu(self.conv1(b.x, b.edge_index)))
        h = self.drop(torch.relu(self.conv2(h, b.edge_index)))
        return self.head(self.pool(h, b.batch, size=b.num_graphs)).squeeze(-1)
