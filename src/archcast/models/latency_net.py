"""archcast's latency network: graph-aided attention over packed graphs, per-operator outputs.

The NAR-Former V2 idea with the pieces latency needs made explicit:

* **Graph-aided attention on edge lists.** Scores ``sigmoid(W x_i) . sigmoid(W x_j) / sqrt(d)``
  exist only on graph edges (shared query/key, no softmax, row-sum normalised, as the reference),
  computed per edge instead of on a dense ``N x N`` matrix, so a 600-operator graph costs the same
  per node as a 20-operator one and batches carry no padding. Predecessors and successors are
  aggregated with separate weights (bidirectional), with a residual (the archcast cell recipe).
* **Sum readout, per operator.** Every operator gets a log-latency ``s_i`` from its own state and
  the graph features (batch, FLOPs, params, memory, size); the network's latency is
  ``sum_i exp(s_i)``. So the per-operator breakdown sums to the total by construction, and
  latency stays additive over operators, the inductive bias the reference's sum pooling encodes.
* **Log-space outputs.** Latencies span orders of magnitude; predicting ``log`` contributions keeps
  the loss (squared log ratio, a relative error) well conditioned across families.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LatencyNetConfig:
    """Hyper-parameters of :class:`LatencyNet` (saved in checkpoints)."""

    d_in: int
    g_in: int
    width: int = 96
    n_blocks: int = 2
    ffn_ratio: int = 2
    head_hidden: int = 96
    dropout: float = 0.0
    init_log_ms: float = -3.0  # initial per-operator log(ms): set from the training data

    def to_dict(self) -> dict:
        return asdict(self)


def _scatter_sum(values: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    out = values.new_zeros((n,) + tuple(values.shape[1:]))
    return out.index_add_(0, index, values)


def graph_logsumexp(s: torch.Tensor, graph_index: torch.Tensor, n_graphs: int) -> torch.Tensor:
    """``log(sum_{i in g} exp(s_i))`` per graph, numerically stable."""
    m = torch.full((n_graphs,), -math.inf, dtype=s.dtype, device=s.device)
    m = m.scatter_reduce(0, graph_index, s.detach(), reduce="amax", include_self=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    tot = _scatter_sum(torch.exp(s - m[graph_index]), graph_index, n_graphs)
    return torch.log(tot.clamp_min(1e-30)) + m


class EdgeAttention(nn.Module):
    """Bidirectional graph-aided attention on forward edges ``src -> dst``, residual."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.qk = nn.Linear(width, width)
        self.w_self = nn.Linear(width, width)
        self.w_pred = nn.Linear(width, width, bias=False)
        self.w_succ = nn.Linear(width, width, bias=False)
        self.drop = nn.Dropout(dropout)
        self.scale = 1.0 / math.sqrt(width)

    def forward(self, h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        x = self.norm(h)
        n = x.shape[0]
        s = torch.sigmoid(self.qk(x))
        score = (s[src] * s[dst]).sum(-1) * self.scale  # [E], > 0
        w = score.unsqueeze(-1)
        pred = _scatter_sum(w * x[src], dst, n) / (_scatter_sum(score, dst, n).unsqueeze(-1) + 1e-6)
        succ = _scatter_sum(w * x[dst], src, n) / (_scatter_sum(score, src, n).unsqueeze(-1) + 1e-6)
        return h + self.drop(F.relu(self.w_self(x) + self.w_pred(pred) + self.w_succ(succ)))


class FeedForward(nn.Module):
    def __init__(self, width: int, ratio: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width * ratio)
        self.fc2 = nn.Linear(width * ratio, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.drop(self.fc2(F.relu(self.fc1(self.norm(h)))))


class LatencyNet(nn.Module):
    """Tokens -> embedding -> blocks -> per-operator log-latency -> graph latency (log ms)."""

    def __init__(self, cfg: LatencyNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.embed = nn.Sequential(nn.Linear(cfg.d_in, w), nn.ReLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList()
        for _ in range(cfg.n_blocks):
            self.blocks.append(EdgeAttention(w, cfg.dropout))
            self.blocks.append(FeedForward(w, cfg.ffn_ratio, cfg.dropout))
        self.gf = nn.Sequential(nn.Linear(cfg.g_in, w), nn.ReLU())
        self.norm = nn.LayerNorm(w)
        self.head = nn.Sequential(nn.Linear(2 * w, cfg.head_hidden), nn.ReLU(), nn.Linear(cfg.head_hidden, 1))
        with torch.no_grad():
            self.head[-1].weight.mul_(0.1)
            self.head[-1].bias.fill_(cfg.init_log_ms)

    def node_states(self, x: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for blk in self.blocks:
            h = blk(h, src, dst) if isinstance(blk, EdgeAttention) else blk(h)
        return self.norm(h)

    def node_log_ms(self, b: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(s [n_nodes] per-operator log ms, h [n_nodes, width])``."""
        h = self.node_states(b["x"], b["src"], b["dst"])
        g = self.gf(b["gf"])[b["graph_index"]]
        s = self.head(torch.cat([h, g], dim=-1)).squeeze(-1)
        return s, h

    def forward(self, b: dict) -> torch.Tensor:
        """Graph latency, log ms, ``[n_graphs]``."""
        s, _ = self.node_log_ms(b)
        return graph_logsumexp(s, b["graph_index"], b["n_graphs"])

    def embedding(self, b: dict) -> torch.Tensor:
        """Graph vectors for distance checks: mean node state ‖ graph-feature projection."""
        h = self.node_states(b["x"], b["src"], b["dst"])
        n = b["n_graphs"]
        cnt = _scatter_sum(torch.ones_like(b["graph_index"], dtype=h.dtype), b["graph_index"], n).clamp_min(1)
        mean = _scatter_sum(h, b["graph_index"], n) / cnt.unsqueeze(-1)
        return torch.cat([mean, self.gf(b["gf"])], dim=-1)
