"""``"mlp"``: an MLP on the BANANAS-style adjacency encoding of a cell.

Input = strictly-upper-triangular adjacency ‖ per-position op one-hot
(:func:`~archcast.predictors._cell_features.adjacency_encoding`), 3 hidden ReLU layers, one output;
Adam + MSE on z-scored targets, epoch chosen on the validation split (:mod:`._torch_fit`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from archcast.graph.spaces import SearchSpace
from archcast.predictors._cell_features import adjacency_encoding
from archcast.predictors._torch_fit import TorchCellPredictor
from archcast.predictors.base import PREDICTORS
from archcast.tokenizer.cell import CellArrays


class _MLP(nn.Module):
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


@PREDICTORS.register("mlp")
class MLPPredictor(TorchCellPredictor):
    """MLP cell-accuracy baseline; extra hyper-parameters ``hidden``, ``layers``, ``dropout``."""

    name = "mlp"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **TorchCellPredictor.DEFAULTS,
        "hidden": 256,
        "layers": 3,
        "dropout": 0.0,
        "weight_decay": 1e-4,
        "max_epochs": 300,
        "patience": 30,
    }

    def _features(self, arrays: CellArrays) -> torch.Tensor:
        return torch.from_numpy(adjacency_encoding(arrays))

    def _batch(self, feats: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        return feats[torch.from_numpy(idx)]

    def _build(self, space: SearchSpace, hp: dict[str, Any]) -> nn.Module:
        n, v = space.max_nodes, len(space.vocabulary)
        return _MLP(n * (n - 1) // 2 + n * v, hp["hidden"], hp["layers"], hp["dropout"])
