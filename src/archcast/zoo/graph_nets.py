"""Graph neural networks for node classification on one dense graph: GCN and GraphSAGE-mean.
Sampled by cost target."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.sampling import CostTargetedFamily, choice, randint


# ============================================================================ graph neural networks
class GraphFamily(CostTargetedFamily):
    """Node classification on one graph given as dense inputs: node features ``[N, F]`` and a
    normalised adjacency ``[N, N]`` (float). With ``batch_size > 1`` both get a leading batch dim.

    The example graph is a seeded random sparse graph (``graph_seed``, ``avg_degree``), symmetric,
    without self loops before normalisation; see :meth:`normalise`.
    """

    input_kind = "graph"

    def draw_graph(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "num_nodes": int(round(math.exp(rng.uniform(math.log(100), math.log(2000))))),
            "in_features": choice(rng, [16, 32, 64, 128, 256, 512]),
            "hidden": choice(rng, [16, 32, 64, 128, 256]),
            "num_layers": randint(rng, 2, 4),
            "num_classes": choice(rng, [2, 4, 7, 16, 40, 64]),
            "activation": choice(rng, ["relu", "elu"]),
            "log_softmax": bool(rng.random() < 0.5),
            "avg_degree": choice(rng, [2, 4, 8, 16]),
            "graph_seed": int(rng.integers(2**31 - 1)),
        }

    @classmethod
    def layer_dims(cls, c: dict[str, Any]) -> list[tuple[int, int]]:
        dims = [c["in_features"]] + [c["hidden"]] * (c["num_layers"] - 1) + [c["num_classes"]]
        return list(zip(dims[:-1], dims[1:]))

    @staticmethod
    @abstractmethod
    def normalise(adj: Any) -> Any:
        """The model's adjacency input from a 0/1 symmetric ``adj`` without self loops."""

    @abstractmethod
    def model(self, config: dict[str, Any]) -> Any:
        """The torch module for ``config``."""

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        n = config["num_nodes"]
        gen = torch.Generator().manual_seed(config["graph_seed"])
        n_edges = n * config["avg_degree"] // 2
        src = torch.randint(0, n, (n_edges,), generator=gen)
        dst = torch.randint(0, n, (n_edges,), generator=gen)
        adj = torch.zeros(n, n)
        adj[src, dst] = 1.0
        adj = torch.maximum(adj, adj.T).fill_diagonal_(0.0)
        adj = self.normalise(adj)
        x = torch.randn(n, config["in_features"], generator=gen)
        if batch_size != 1:
            x, adj = x.expand(batch_size, -1, -1).contiguous(), adj.expand(batch_size, -1, -1).contiguous()
        return self.model(config), (x, adj)


@FAMILIES.register("gcn")
class GCNFamily(GraphFamily):
    """GCN (Kipf & Welling): ``H' = act(Â·H·W + b)`` with ``Â = D^-1/2 (A + I) D^-1/2`` given as the
    adjacency input; optional residual on hidden→hidden layers."""

    name = "gcn"
    version = "1"
    description = "GCN on a dense normalised adjacency input: act(A_hat @ H @ W + b), 2-4 layers"
    macs_range = (1e6, 3e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        config = self.draw_graph(rng)
        config["residual"] = bool(rng.random() < 0.3) and config["num_layers"] > 2  # needs a hidden→hidden layer
        return config

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        n = c["num_nodes"]
        return sum(n * fi * fo + n * n * fo for fi, fo in cls.layer_dims(c))

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"num_nodes": 24, "in_features": 8, "hidden": 8, "num_layers": 3, "num_classes": 3,
                "activation": "relu", "log_softmax": True, "avg_degree": 4, "graph_seed": 0, "residual": True}

    @staticmethod
    def normalise(adj: Any) -> Any:
        a = adj + torch.eye(adj.shape[0])
        d = a.sum(1).rsqrt()
        return d[:, None] * a * d[None, :]

    def model(self, config: dict[str, Any]) -> Any:
        return GCN(config)


@FAMILIES.register("graphsage")
class GraphSAGEFamily(GraphFamily):
    """GraphSAGE with mean aggregation: ``H' = act(W·[H ‖ Ā·H] + b)`` where ``Ā = D^-1 A`` (row-mean
    over neighbours) is the adjacency input; optional L2 normalisation of hidden embeddings."""

    name = "graphsage"
    version = "1"
    description = "GraphSAGE-mean on a dense row-normalised adjacency: act(W [H || A_mean @ H]), 2-4 layers"
    macs_range = (1e6, 3e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        config = self.draw_graph(rng)
        config["normalize"] = bool(rng.random() < 0.5)
        return config

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        n = c["num_nodes"]
        return sum(n * n * fi + n * 2 * fi * fo for fi, fo in cls.layer_dims(c))

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"num_nodes": 24, "in_features": 8, "hidden": 8, "num_layers": 2, "num_classes": 3,
                "activation": "elu", "log_softmax": False, "avg_degree": 4, "graph_seed": 0, "normalize": True}

    @staticmethod
    def normalise(adj: Any) -> Any:
        return adj / adj.sum(1, keepdim=True).clamp(min=1.0)

    def model(self, config: dict[str, Any]) -> Any:
        return GraphSAGE(config)


# ============================================================================ torch modules
def activation(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.ELU()


class GraphConv(nn.Module):
    """``Â·(H·W) + b`` (the bias is added after aggregation)."""

    def __init__(self, fin: int, fout: int) -> None:
        super().__init__()
        self.lin, self.bias = nn.Linear(fin, fout, bias=False), nn.Parameter(torch.zeros(fout))

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return adj @ self.lin(x) + self.bias


class GCN(nn.Module):
    """``(x [.., N, F], adj [.., N, N]) -> [.., N, classes]``"""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(GraphConv(fi, fo) for fi, fo in GCNFamily.layer_dims(c))
        self.act, self.residual, self.log_softmax = activation(c["activation"]), c["residual"], c["log_softmax"]

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            y = conv(x, adj)
            if i < len(self.convs) - 1:
                y = self.act(y)
                if self.residual and y.shape[-1] == x.shape[-1]:
                    y = y + x
            x = y
        return F.log_softmax(x, dim=-1) if self.log_softmax else x


class SAGEConv(nn.Module):
    """``W·[H ‖ Ā·H] + b`` (mean aggregation, as the row-normalised ``Ā`` gives)."""

    def __init__(self, fin: int, fout: int) -> None:
        super().__init__()
        self.lin = nn.Linear(2 * fin, fout)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cat([x, adj @ x], dim=-1))


class GraphSAGE(nn.Module):
    """``(x [.., N, F], adj [.., N, N]) -> [.., N, classes]``"""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(SAGEConv(fi, fo) for fi, fo in GraphSAGEFamily.layer_dims(c))
        self.act, self.normalize, self.log_softmax = activation(c["activation"]), c["normalize"], c["log_softmax"]

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x, adj)
            if i < len(self.convs) - 1:
                x = self.act(x)
                if self.normalize:  # L2, written out (F.normalize exports a Shape/Expand detour)
                    x = x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return F.log_softmax(x, dim=-1) if self.log_softmax else x


__all__ = ["GCN", "GCNFamily", "GraphConv", "GraphFamily", "GraphSAGE", "GraphSAGEFamily", "SAGEConv"]
