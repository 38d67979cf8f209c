"""``nnlp``: NNLP-style, two GraphSAGE layers (torch-geometric) over archcast-v1 tokens, sum pooling."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from archcast.predictors.base import register_predictor
from archcast.predictors.latency.network import (
    PackedTorchPredictor,
    threads,
    train_log_latency,
)


@register_predictor("latency", "nnlp")
class NNLPLatency(PackedTorchPredictor):
    """Two GraphSAGE layers (torch-geometric) over archcast-v1 tokens, sum pooling, log-MSE."""

    name = "nnlp"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "hidden": 128, "epochs": 12, "lr": 3e-3, "weight_decay": 1e-4, "warmup": 0.05, "batch_size": 32,
        "max_nodes": 6000, "threads": 1, "progress": False,
    }

    def _build(self, d_in: int, init: float):
        import torch
        from torch import nn
        from torch_geometric.nn import SAGEConv, global_add_pool

        hidden = int(self.hp["hidden"])

        class _Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.c1, self.c2 = SAGEConv(d_in, hidden), SAGEConv(hidden, hidden)
                self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
                with torch.no_grad():
                    self.head[-1].bias.fill_(init)

            def forward(self, b: dict) -> torch.Tensor:
                ei = torch.cat([torch.stack([b["src"], b["dst"]]), torch.stack([b["dst"], b["src"]])], 1)
                h = torch.relu(self.c1(b["x"], ei))
                h = torch.relu(self.c2(h, ei))
                pooled = global_add_pool(h, b["graph_index"], size=b["n_graphs"])
                return self.head(torch.log1p(pooled.clamp_min(0))).squeeze(-1)

        return _Net()

    def _fit(self, graphs, y, val_graphs, val_y, init_from):
        with threads(self.hp):
            toks = self._tokens(graphs, val_graphs, self.tokenizer)
            import torch

            torch.manual_seed(self.seed)
            self.net_ = self._build(toks[0].tokens.shape[1], float(np.mean(np.log(y))))
            self.history_ = train_log_latency(
                self.net_, lambda idx: self.net_(self._packed(graphs, idx)), np.log(y),
                lambda: np.exp(self._infer(self.net_, val_graphs)), val_y, self._batches(graphs),
                epochs=int(self.hp["epochs"]), lr=float(self.hp["lr"]), weight_decay=float(self.hp["weight_decay"]),
                warmup=float(self.hp["warmup"]), seed=self.seed, progress=bool(self.hp["progress"]))

    def _predict(self, graphs):
        with threads(self.hp):
            return np.exp(self._infer(self.net_, list(graphs)))
