"""State-space language models: a Mamba-style selective SSM (``mamba``), token ids in, logits out."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import RMSNorm, token_input
from archcast.zoo.sampling import CostTargetedFamily, choice, randint


@FAMILIES.register("mamba")
class MambaFamily(CostTargetedFamily):
    """A Mamba-style selective state-space language model (token ids in, next-token logits out).

    Block (pre-RMSNorm, residual): in-proj → depthwise causal conv1d + SiLU over (x, B, C) →
    input-dependent step ``dt = softplus(·)`` → selective scan → ``+ D·x`` → gate ``· SiLU(z)`` →
    RMSNorm → out-proj. The scan has a scalar decay per head (the Mamba-2 / SSD form) and is
    computed in chunks, in closed form: inside a chunk as a masked decay matrix built from a
    cumulative sum of log-decays, across chunks by passing chunk states through a second decay
    matrix. No loops, so it exports to plain MatMul/CumSum/Exp/Where ONNX and stays fast to export.
    """

    name = "mamba"
    input_kind = "tokens"
    version = "1"
    description = "Mamba-style selective SSM LM: causal conv1d, chunked closed-form selective scan, SiLU gate, RMSNorm"
    macs_range = (5e6, 1.5e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        seq_len = choice(rng, [64, 128, 256, 512])
        d_model = choice(rng, [64, 96, 128, 192, 256, 384, 512])
        expand = choice(rng, [1, 2])
        d_inner = expand * d_model
        return {
            "vocab_size": choice(rng, [256, 1024, 2048, 4096, 8192]),
            "seq_len": seq_len,
            "d_model": d_model,
            "n_layers": randint(rng, 2, 8),  # ~80 ONNX nodes a layer: deeper stacks near the 3 s export budget
            "expand": expand,
            "head_dim": choice(rng, [h for h in (16, 32, 64) if d_inner % h == 0]),
            "d_state": choice(rng, [16, 32, 64]),
            "d_conv": choice(rng, [2, 3, 4]),
            "chunk_size": min(seq_len, choice(rng, [32, 64, 128])),
            "tie_embeddings": bool(rng.random() < 0.5),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        seq, d, n, q = c["seq_len"], c["d_model"], c["d_state"], c["chunk_size"]
        di = c["expand"] * d
        heads = di // c["head_dim"]
        proj = seq * d * (2 * di + 2 * n + heads) + seq * di * d
        conv = seq * (di + 2 * n) * c["d_conv"]
        scan = seq * q * n + seq * q * di + 2 * seq * n * di
        return c["n_layers"] * (proj + conv + scan) + seq * d * c["vocab_size"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"vocab_size": 64, "seq_len": 16, "d_model": 16, "n_layers": 1, "expand": 2, "head_dim": 8,
                "d_state": 4, "d_conv": 4, "chunk_size": 8, "tie_embeddings": True}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return MambaLM(config), (token_input(batch_size, config["seq_len"], config["vocab_size"]),)


def future_mask(t: int) -> torch.Tensor:
    """``[t, t]`` boolean, True above the diagonal (``s > t``: the future)."""
    return torch.ones(t, t, dtype=torch.bool).triu(1)


def decay_matrix(cum: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
    """``[..., T] -> [..., T, T]``: ``exp(cum[t] − cum[s])`` for ``s ≤ t``, else 0.

    ``cum`` is a cumulative sum of log-decays, so the entry is the product of the decays of
    steps ``s+1..t``. ``future`` is :func:`future_mask` ``(T)``.
    """
    diff = cum[..., :, None] - cum[..., None, :]
    return torch.exp(diff.masked_fill(future, float("-inf")))


def chunked_scan(x: torch.Tensor, log_a: torch.Tensor, b_in: torch.Tensor, c_out: torch.Tensor,
                 future_q: torch.Tensor, future_k: torch.Tensor) -> torch.Tensor:
    """The selective scan ``h_t = a_t·h_{t−1} + B_t ⊗ x_t``, ``y_t = C_tᵀ h_t`` (zero initial state),
    in closed form over chunks of ``chunk`` steps.

    Shapes: ``x [b, L, H, P]``, ``log_a [b, L, H]`` (log of the per-head decay, ≤ 0),
    ``b_in``/``c_out`` ``[b, L, N]`` (shared by the heads) → ``y [b, L, H, P]``. The chunk length
    ``Q`` and count ``k = L / Q`` come from the masks: ``future_q = future_mask(Q)``,
    ``future_k = future_mask(k + 1)``.
    """
    bsz, seq, heads, p = x.shape
    n, chunk = b_in.shape[-1], future_q.shape[0]
    k = seq // chunk
    x = x.reshape(bsz, k, chunk, heads, p).permute(0, 3, 1, 2, 4)  # [b, H, k, Q, P]
    cum = torch.cumsum(log_a.reshape(bsz, k, chunk, heads).permute(0, 3, 1, 2), dim=-1)  # [b, H, k, Q]
    b_in = b_in.reshape(bsz, 1, k, chunk, n)
    c_out = c_out.reshape(bsz, 1, k, chunk, n)
    # inside each chunk: y_t = Σ_{s≤t} (C_t·B_s) · decay(s→t) · x_s
    y = ((c_out @ b_in.transpose(-1, -2)) * decay_matrix(cum, future_q)) @ x  # [b, H, k, Q, P]
    # state at each chunk's end, from that chunk's inputs alone
    to_end = torch.exp(cum[..., -1:] - cum)  # [b, H, k, Q]
    states = (b_in * to_end[..., None]).transpose(-1, -2) @ x  # [b, H, k, N, P]
    # state entering chunk j = Σ_{i<j} decay(end of i → start of j) · states_i
    # (zeros are concatenated rather than F.pad-ded: Pad exports a constant detour)
    totals = torch.cumsum(torch.cat([cum.new_zeros(bsz, heads, 1), cum[..., -1]], dim=-1), dim=-1)  # [b, H, k+1]
    states = torch.cat([states.new_zeros(bsz, heads, 1, n, p), states], dim=2)  # zero state first
    states = states.reshape(bsz, heads, k + 1, n * p)
    entering = (decay_matrix(totals, future_k) @ states)[:, :, :k].reshape(bsz, heads, k, n, p)
    y = y + (c_out @ entering) * torch.exp(cum)[..., None]
    return y.permute(0, 2, 3, 1, 4).reshape(bsz, seq, heads, p)


class MambaMixer(nn.Module):
    """``[B, L, d] -> [B, L, d]`` (see :class:`MambaFamily`)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        d, n = c["d_model"], c["d_state"]
        di = c["expand"] * d
        self.di, self.n, self.heads = di, n, di // c["head_dim"]
        self.register_buffer("future_q", future_mask(c["chunk_size"]), persistent=False)
        self.register_buffer("future_k", future_mask(c["seq_len"] // c["chunk_size"] + 1), persistent=False)
        self.in_proj = nn.Linear(d, 2 * di + 2 * n + self.heads, bias=False)  # z, x, B, C, dt
        conv_ch = di + 2 * n
        self.conv = nn.Conv1d(conv_ch, conv_ch, c["d_conv"], groups=conv_ch, padding=c["d_conv"] - 1)
        # dt = softplus(. + dt_bias) starts in [1e-3, 1e-1]; decay rates A in [1, 16]
        dt = torch.exp(torch.rand(self.heads) * math.log(100) + math.log(1e-3))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        self.a_log = nn.Parameter(torch.log(torch.empty(self.heads).uniform_(1, 16)))
        self.d_skip = nn.Parameter(torch.ones(self.heads))
        self.norm = RMSNorm(di)
        self.out_proj = nn.Linear(di, d, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        bsz, seq, _ = u.shape
        z, xbc, dt = self.in_proj(u).split([self.di, self.di + 2 * self.n, self.heads], dim=-1)
        xbc = F.silu(self.conv(xbc.transpose(1, 2))[..., :seq]).transpose(1, 2)  # causal: drop the tail
        x, b_in, c_out = xbc.split([self.di, self.n, self.n], dim=-1)
        dt = F.softplus(dt + self.dt_bias)  # [B, L, H]
        x = x.reshape(bsz, seq, self.heads, -1)
        y = chunked_scan(x * dt[..., None], -torch.exp(self.a_log) * dt, b_in, c_out, self.future_q, self.future_k)
        y = (y + x * self.d_skip[:, None]).reshape(bsz, seq, self.di)
        return self.out_proj(self.norm(y * F.silu(z)))


class MambaBlock(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.norm, self.mixer = RMSNorm(c["d_model"]), MambaMixer(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))


class MambaLM(nn.Module):
    """Token ids ``[B, L]`` (int64) → logits ``[B, L, vocab]``."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.embed = nn.Embedding(c["vocab_size"], c["d_model"])
        self.blocks = nn.Sequential(*[MambaBlock(c) for _ in range(c["n_layers"])])
        self.norm = RMSNorm(c["d_model"])
        self.lm_head = nn.Linear(c["d_model"], c["vocab_size"], bias=False)
        if c["tie_embeddings"]:
            self.lm_head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(self.blocks(self.embed(ids))))


__all__ = ["MambaBlock", "MambaFamily", "MambaLM", "MambaMixer", "chunked_scan", "decay_matrix", "future_mask"]
