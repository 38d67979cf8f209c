"""``"gcn"``: a BRP-NAS-style graph convolutional network on dense, padded cell batches.

Each layer is ``H <- ReLU(Â · H · W)`` with ``Â = D^-1/2 (A + Aᵀ + I) D^-1/2`` over the real
nodes (information flows both ways along edges; padding rows/columns stay zero). Node features
are op one-hots; the readout is the mean over real nodes, then an MLP head. Adam + weight decay
on z-scored targets, epoch chosen on the validation split (:mod:`.torch_cell`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from archcast.graph.spaces import SearchSpace
from archcast.models.gcn import CellGCN
from archcast.predictors.accuracy.torch_cell import TorchCellPredictor
from archcast.predictors.base import register_predictor
from archcast.tokenizer.cell import CellArrays


def normalized_adjacency(adj: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``[B, N, N]`` float32 ``D^-1/2 (A + Aᵀ + I) D^-1/2`` restricted to real nodes (``mask``)."""
    m = mask.astype(np.float32)
    a = (adj + adj.transpose(0, 2, 1) + np.eye(adj.shape[1], dtype=np.float32)) * m[:, :, None] * m[:, None, :]
    a = np.minimum(a, 1.0)  # an edge listed both ways must not count twice
    deg = a.sum(-1)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0).astype(np.float32)
    return a * inv[:, :, None] * inv[:, None, :]


@register_predictor("accuracy", "gcn")
class GCNPredictor(TorchCellPredictor):
    """BRP-NAS-style GCN baseline; extra hyper-parameters ``hidden``, ``layers``, ``dropout``."""

    name = "gcn"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **TorchCellPredictor.DEFAULTS,
        "hidden": 144,
        "layers": 4,
        "dropout": 0.0,  # torch's CPU dropout costs as much as the layer; val-based stopping regularises
        "lr": 1e-3,  # BRP-NAS trains at ~3.5e-4 for many more epochs; 1e-3 converges within a 60 s CPU budget
        "weight_decay": 1e-4,
        "batch_size": 64,
        "epochs": 300,
        "patience": 40,
    }

    def _features(self, arrays: CellArrays) -> tuple[torch.Tensor, ...]:
        return (
            torch.from_numpy(arrays.one_hot()),
            torch.from_numpy(normalized_adjacency(arrays.adj, arrays.mask)),
            torch.from_numpy(arrays.mask.astype(np.float32)),
        )

    def _batch(self, feats: tuple[torch.Tensor, ...], idx: np.ndarray) -> tuple[torch.Tensor, ...]:
        i = torch.from_numpy(idx)
        return tuple(f[i] for f in feats)

    def _build(self, space: SearchSpace, hp: dict[str, Any]) -> nn.Module:
        return CellGCN(len(space.vocabulary), hp["hidden"], hp["layers"], hp["dropout"])
