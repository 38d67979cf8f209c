"""The NAR-Former V2 network (Transformer with a GNN's inductive bias) on padded, masked batches.

Shapes: ``x [B, N, d_in]`` tokens, ``adj [B, N, N]`` (``adj[b, i, j] = 1``: token i aggregates
token j; zero rows/cols on padding), ``mask [B, N]`` bool (True on real tokens),
``graph_features [B, g]`` (optional). Output ``[B]``, positive (``softplus(-z)``).

Padding never influences real tokens: attention reads only where ``adj`` is 1, the degree gate
counts real neighbours only, and pooling is masked. So a padded batch gives the same outputs as
one graph at a time (tested).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

READOUTS = ("sum", "mean", "layer_fusion")


@dataclass
class NetConfig:
    """Hyper-parameters of :class:`NARFormerNet` (saved inside every checkpoint).

    Attributes:
        d_in: token width from the tokenizer.
        width: hidden width of every block (``gnn_hidden`` in the reference).
        n_blocks: number of (graph-aided attention + FFN) blocks.
        ffn_ratio: FFN expansion; FFN is grouped linear ``width -> ffn_ratio*width -> width``.
        ffn_groups: groups of the grouped linears (LayerNorm per group after each).
        degree_gate: gate tokens by ``sigmoid(Linear(degree))`` before attention.
        readout: ``sum`` (latency), ``mean``, or ``layer_fusion`` (cells: mean per block, learned
            sigmoid weights over blocks).
        graph_features: width of graph-level features (0 = none); mapped by Linear->ReLU to ``width``.
        fc_hidden: hidden width of the 2-layer head.
        dropout: dropout everywhere (reference: 0.05).
        layer_scale_init: initial per-channel scale of the FFN residual (reference: 1e-4).
        bidirectional: aggregate predecessors and successors with separate weights (archcast
            improvement; the reference uses the adjacency it is given, one direction).
        positive_output: ``softplus(-z)`` output (reference); False gives the raw ``z`` (for
            standardised targets).
        pre_embed: project tokens to ``width`` with a Linear before the first block (archcast).
        attn_residual: ``x = x + attn(x)`` instead of ``x = attn(x)`` (needs ``pre_embed`` or
            ``d_in == width``; archcast).
        l2norm: L2-normalise each token after attention (reference: True).
    """

    d_in: int
    width: int = 512
    n_blocks: int = 2
    ffn_ratio: int = 4
    ffn_groups: int = 8
    degree_gate: bool = True
    readout: str = "sum"
    graph_features: int = 0
    fc_hidden: int = 512
    dropout: float = 0.05
    layer_scale_init: float = 1e-4
    bidirectional: bool = False
    positive_output: bool = True
    pre_embed: bool = False
    attn_residual: bool = False
    l2norm: bool = True

    def __post_init__(self) -> None:
        if self.readout not in READOUTS:
            raise ValueError(f"readout {self.readout!r} is not one of {READOUTS}")
        if self.width % self.ffn_groups or (self.width * self.ffn_ratio) % self.ffn_groups:
            raise ValueError(f"width {self.width} must be divisible by ffn_groups {self.ffn_groups}")

    def to_dict(self) -> dict:
        return asdict(self)


class GraphAidedAttention(nn.Module):
    """Graph-aided attention as the reference computes it (a GraphSAGE layer with learned weights).

    ``S = sigmoid(X W_qk)``; ``scores = S S^T / sqrt(d) * A`` (neighbours only, no softmax, one head,
    shared query/key); rows normalised by their sum; ``out = W_l (scores X) + W_r X``; L2-normalised.
    With ``bidirectional``, a second score/aggregation on ``A^T`` with its own ``W_l`` is added.
    """

    def __init__(self, d_in: int, d_out: int, degree_gate: bool, bidirectional: bool = False,
                 l2norm: bool = True) -> None:
        super().__init__()
        self.l2norm = l2norm
        self.lin_qk = nn.Linear(d_in, d_in)
        self.lin_l = nn.Linear(d_in, d_out)
        self.lin_r = nn.Linear(d_in, d_out, bias=False)
        self.lin_b = nn.Linear(d_in, d_out, bias=False) if bidirectional else None
        self.lin_d = nn.Linear(1, d_in) if degree_gate else None

    @staticmethod
    def _aggregate(s: torch.Tensor, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(s, s.transpose(-2, -1)) / math.sqrt(x.size(-1)) * adj
        attn = scores / (scores.sum(dim=-1, keepdim=True) + 1e-6)
        return torch.matmul(attn, x)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        if self.lin_d is not None:
            deg = adj.sum(dim=-1, keepdim=True)  # [B, N, 1]
            if self.lin_b is not None:
                deg = deg + adj.sum(dim=-2).unsqueeze(-1)
            x = x * torch.sigmoid(self.lin_d(deg))
        s = torch.sigmoid(self.lin_qk(x))
        out = self.lin_l(self._aggregate(s, x, adj)) + self.lin_r(x)
        if self.lin_b is not None:
            out = out + self.lin_b(self._aggregate(s, x, adj.transpose(-2, -1)))
        return F.normalize(out, p=2.0, dim=-1) if self.l2norm else out


class GroupLinear(nn.Module):
    """Grouped linear ``[..., d_in] -> [..., d_out]`` with a LayerNorm shared by the groups."""

    def __init__(self, d_in: int, d_out: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(groups, d_in // groups, d_out // groups))
        self.bias = nn.Parameter(torch.zeros(groups, d_out // groups))
        self.norm = nn.LayerNorm(d_out // groups)
        nn.init.xavier_uniform_(self.weight)

    # Small layers run as one GEMM with a block-diagonal weight (same maths; a batched per-group
    # matmul of tiny matrices is ~30 % slower on CPU); large ones keep the per-group product.
    BLOCK_DIAG_MAX = 1 << 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        g, di, do = self.weight.shape
        if g * di * g * do <= self.BLOCK_DIAG_MAX:
            y = (x @ torch.block_diag(*self.weight.unbind(0))).reshape(*lead, g, do)
        else:
            y = torch.einsum("...gi,gio->...go", x.reshape(*lead, g, di), self.weight)
        return self.norm(y + self.bias).reshape(*lead, -1)


class GroupedFFN(nn.Module):
    """Pre-LayerNorm grouped feed-forward: LN -> GLT up -> ReLU -> drop -> GLT down -> drop."""

    def __init__(self, width: int, ratio: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = GroupLinear(width, width * ratio, groups)
        self.down = GroupLinear(width * ratio, width, groups)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(self.drop(F.relu(self.up(self.norm(x))))))


class Block(nn.Module):
    """``x = drop(relu(attn(x, A)))``; ``x = x + gamma * ffn(x)`` (no residual around attention,
    as in the reference)."""

    def __init__(self, d_in: int, cfg: NetConfig) -> None:
        super().__init__()
        self.attn = GraphAidedAttention(d_in, cfg.width, cfg.degree_gate, cfg.bidirectional, cfg.l2norm)
        self.residual = cfg.attn_residual
        self.ffn = GroupedFFN(cfg.width, cfg.ffn_ratio, cfg.ffn_groups, cfg.dropout)
        self.gamma = nn.Parameter(torch.full((cfg.width,), cfg.layer_scale_init))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.relu(self.attn(x, adj)))
        x = x + h if self.residual else h
        return x + self.gamma * self.ffn(x)


class NARFormerNet(nn.Module):
    """Blocks -> masked readout (+ graph features) -> 2-layer head -> ``softplus(-z)``."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_in = nn.Linear(cfg.d_in, cfg.width) if cfg.pre_embed else None
        first = cfg.width if cfg.pre_embed else cfg.d_in
        if cfg.attn_residual and first != cfg.width:
            raise ValueError("attn_residual needs pre_embed=True or d_in == width")
        self.blocks = nn.ModuleList(
            Block(first if i == 0 else cfg.width, cfg) for i in range(cfg.n_blocks)
        )
        if cfg.readout == "layer_fusion":
            total = cfg.n_blocks * cfg.width
            self.fusion = nn.Sequential(
                nn.Linear(total, total // 4), nn.ReLU(), nn.Linear(total // 4, cfg.n_blocks), nn.Sigmoid()
            )
        if cfg.graph_features:
            self.gf = nn.Sequential(nn.Linear(cfg.graph_features, cfg.width), nn.Dropout(cfg.dropout), nn.ReLU())
        head_in = cfg.width * (2 if cfg.graph_features else 1)
        self.head = nn.Sequential(
            nn.Linear(head_in, cfg.fc_hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.fc_hidden, cfg.fc_hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.fc_hidden, 1),
        )
        self._init()

    def _init(self) -> None:
        # Reference init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on linear weights and biases.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.weight.size(-1))
                nn.init.uniform_(m.weight, -bound, bound)
                if m.bias is not None:
                    nn.init.uniform_(m.bias, -bound, bound)

    def node_features(self, x: torch.Tensor, adj: torch.Tensor) -> list[torch.Tensor]:
        """Token states after every block, each ``[B, N, width]``."""
        outs = []
        if self.embed_in is not None:
            x = self.embed_in(x)
        for blk in self.blocks:
            x = blk(x, adj)
            outs.append(x)
        return outs

    def embed(self, x: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor,
              graph_features: torch.Tensor | None = None) -> torch.Tensor:
        """Graph vector fed to the head, ``[B, head_in]``."""
        m = mask.unsqueeze(-1).to(x.dtype)
        feats = self.node_features(x, adj)
        if self.cfg.readout == "sum":
            g = (feats[-1] * m).sum(1)
        elif self.cfg.readout == "mean":
            g = (feats[-1] * m).sum(1) / m.sum(1).clamp_min(1.0)
        else:
            per_block = [(f * m).sum(1) / m.sum(1).clamp_min(1.0) for f in feats]  # each [B, W]
            stacked = torch.stack(per_block, 1)  # [B, L, W]
            w = self.fusion(stacked.flatten(1))  # [B, L]
            g = (stacked * w.unsqueeze(-1)).sum(1)
        if self.cfg.graph_features:
            if graph_features is None:
                raise ValueError("this model needs graph_features")
            g = torch.cat([g, self.gf(graph_features)], dim=-1)
        return g

    def forward(self, x: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor,
                graph_features: torch.Tensor | None = None) -> torch.Tensor:
        z = self.head(self.embed(x, adj, mask, graph_features)).squeeze(-1)
        return F.softplus(-z) if self.cfg.positive_output else z
