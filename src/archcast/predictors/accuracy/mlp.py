"""``"mlp"``: an MLP on the BANANAS-style adjacency encoding of a cell.

Input = strictly-upper-triangular adjacency ‖ per-position op one-hot
(:func:`~archcast.tokenizer.cell_features.adjacency_encoding`), 3 hidden ReLU layers, one output;
Adam + MSE on z-scored targets, epoch chosen on the validation split (:mod:`.torch_cell`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from archcast.graph.spaces import SearchSpace
from archcast.models.mlp import CellMLP
from archcast.predictors.accuracy.torch_cell import TorchCellPredictor
from archcast.predictors.base import register_predictor
from archcast.tokenizer.cell import CellArrays
from archcast.tokenizer.cell_features import adjacency_encoding


@register_predictor("accuracy", "mlp")
class MLPPredictor(TorchCellPredictor):
    """MLP cell-accuracy baseline; extra hyper-parameters ``hidden``, ``layers``, ``dropout``."""

    name = "mlp"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **TorchCellPredictor.DEFAULTS,
        "hidden": 256,
        "layers": 3,
        "dropout": 0.0,
        "weight_decay": 1e-4,
        "epochs": 300,
        "patience": 30,
    }

    def _features(self, arrays: CellArrays) -> torch.Tensor:
        return torch.from_numpy(adjacency_encoding(arrays))

    def _batch(self, feats: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        return feats[torch.from_numpy(idx)]

    def _build(self, space: SearchSpace, hp: dict[str, Any]) -> nn.Module:
        n, v = space.max_nodes, len(space.vocabulary)
        return CellMLP(n * (n - 1) // 2 + n * v, hp["hidden"], hp["layers"], hp["dropout"])
