"""``"nnlp"``: an NNLP-style GraphSAGE regressor built on torch-geometric.

Each cell becomes a :class:`torch_geometric.data.Data` (node features = op one-hot, edges made
undirected); two ``SAGEConv`` layers with ReLU, a sum (``global_add_pool``) or mean readout, and an
MLP head. Mini-batches are collated with ``Batch.from_data_list``. Adam + MSE on z-scored targets,
epoch chosen on the validation split (:mod:`.torch_cell`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from archcast.graph.spaces import SearchSpace
from archcast.models.sage import CellSAGE
from archcast.predictors.accuracy.torch_cell import TorchCellPredictor
from archcast.predictors.base import register_predictor
from archcast.tokenizer.cell import CellArrays

READOUTS = ("sum", "mean")


def cell_data(arrays: CellArrays) -> list[Data]:
    """One ``Data(x=[n, V] one-hot, edge_index=[2, 2E] undirected)`` per cell, padding dropped."""
    oh = arrays.one_hot()
    out = []
    for k in range(len(arrays.op_ids)):
        n = int(arrays.mask[k].sum())
        src, dst = np.nonzero(arrays.adj[k, :n, :n])
        ei = np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])]).astype(np.int64)
        out.append(Data(x=torch.from_numpy(oh[k, :n].copy()), edge_index=torch.from_numpy(ei)))
    return out


@register_predictor("accuracy", "nnlp")
class NNLPPredictor(TorchCellPredictor):
    """Two-layer GraphSAGE baseline; extra hyper-parameters ``hidden``, ``readout``
    (``"sum"``/``"mean"``), ``dropout``."""

    name = "nnlp"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        **TorchCellPredictor.DEFAULTS,
        "hidden": 128,  # the NNLP paper uses 512; 128 keeps a 1.5k-cell fit on 2 CPU cores under a minute
        "readout": "sum",
        "dropout": 0.0,
        "weight_decay": 1e-4,
        "epochs": 200,
        "patience": 30,
    }
    CHOICES: ClassVar[dict[str, Sequence[Any]]] = {**TorchCellPredictor.CHOICES, "readout": READOUTS}

    def _features(self, arrays: CellArrays) -> list[Data]:
        return cell_data(arrays)

    def _batch(self, feats: list[Data], idx: np.ndarray) -> Batch:
        return Batch.from_data_list([feats[i] for i in idx])

    def _build(self, space: SearchSpace, hp: dict[str, Any]) -> nn.Module:
        return CellSAGE(len(space.vocabulary), hp["hidden"], hp["readout"], hp["dropout"])
