"""Text Transformers over token ids: BERT-style encoders (post-LN, bidirectional, pooled classifier),
GPT-style decoders (pre-LN, causal mask, tied LM head) and GPT-style decoders whose FFN is a
mixture of experts with top-k routing. Several sequence lengths. Sampled by cost target.

The MoE layer computes every expert on every token and combines them with gates that are zero
outside each token's top-k (``TopK`` + ``ScatterElements``): the dense form ONNX can express with
static shapes; its cost is that of all experts, which is what the exported graph runs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import Attention, Mlp, token_input
from archcast.zoo.sampling import CostTargetedFamily, choice, randint


class CausalAttention(Attention):
    """:class:`~archcast.zoo.layers.Attention` with an additive mask: −inf above the diagonal."""

    def __init__(self, dim: int, heads: int, seq_len: int) -> None:
        super().__init__(dim, heads)
        mask = torch.zeros(seq_len, seq_len).masked_fill(torch.ones(seq_len, seq_len, dtype=torch.bool).triu(1),
                                                         float("-inf"))
        self.register_buffer("causal", mask, persistent=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x, bias=self.causal)


class MoEFeedForward(nn.Module):
    """``[B, T, d] -> [B, T, d]``: router softmax over ``experts``, keep the top ``k`` gates
    (renormalised), run the stacked expert MLPs as batched MatMuls and sum them weighted by gate."""

    def __init__(self, dim: int, hidden: int, experts: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.router = nn.Linear(dim, experts, bias=False)
        self.w1 = nn.Parameter(torch.randn(experts, dim, hidden) * dim ** -0.5)
        self.w2 = nn.Parameter(torch.randn(experts, hidden, dim) * hidden ** -0.5)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        tokens = x.reshape(1, b * t, d)
        probs = self.router(tokens).softmax(-1)  # [1, N, E]
        top, idx = probs.topk(self.k, dim=-1)
        gates = torch.zeros_like(probs).scatter(-1, idx, top / top.sum(-1, keepdim=True))
        out = self.act(tokens @ self.w1) @ self.w2  # [E, N, d]
        return (out * gates[0].transpose(0, 1)[..., None]).sum(0).reshape(b, t, d)


class DecoderBlock(nn.Module):
    """Pre-LN: ``x + causal_attn(ln(x))``, ``x + ffn(ln(x))`` (dense GELU MLP or MoE)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        d = c["d_model"]
        self.norm1, self.attn = nn.LayerNorm(d), CausalAttention(d, d // c["head_dim"], c["seq_len"])
        self.norm2 = nn.LayerNorm(d)
        hidden = d * c["mlp_ratio"]
        self.ffn = MoEFeedForward(d, hidden, c["experts"], c["top_k"]) if c.get("experts") else Mlp(d, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class EncoderLayer(nn.Module):
    """Post-LN (BERT): ``ln(x + attn(x))``, ``ln(x + mlp(x))``."""

    def __init__(self, d: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attn, self.norm1 = Attention(d, heads), nn.LayerNorm(d)
        self.mlp, self.norm2 = Mlp(d, hidden), nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))


class Bert(nn.Module):
    """Token ids ``[B, L]`` -> ``[B, classes]`` (tanh pooler on the first token)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        d = c["d_model"]
        self.embed, self.pos = nn.Embedding(c["vocab_size"], d), nn.Parameter(torch.randn(1, c["seq_len"], d) * 0.02)
        self.norm = nn.LayerNorm(d)
        self.layers = nn.Sequential(*[EncoderLayer(d, d // c["head_dim"], d * c["mlp_ratio"])
                                      for _ in range(c["n_layers"])])
        self.pooler, self.head = nn.Linear(d, d), nn.Linear(d, c["num_classes"])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.norm(self.embed(ids) + self.pos))
        return self.head(torch.tanh(self.pooler(x[:, 0])))


class GPT(nn.Module):
    """Token ids ``[B, L]`` -> next-token logits ``[B, L, vocab]`` (LM head tied to the embedding)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        d = c["d_model"]
        self.embed, self.pos = nn.Embedding(c["vocab_size"], d), nn.Parameter(torch.randn(1, c["seq_len"], d) * 0.02)
        self.blocks = nn.Sequential(*[DecoderBlock(c) for _ in range(c["n_layers"])])
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, c["vocab_size"], bias=False)
        self.lm_head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(self.blocks(self.embed(ids) + self.pos)))


def _draw_text(rng: np.random.Generator, seq_lens: list[int], widths: list[int]) -> dict[str, Any]:
    return {
        "seq_len": choice(rng, seq_lens),
        "vocab_size": choice(rng, [1000, 8192, 16384, 30522, 50257]),
        "d_model": choice(rng, widths),
        "head_dim": 64,
        "n_layers": randint(rng, 1, 24),
        "mlp_ratio": 4,
    }


def _layer_macs(c: dict[str, Any], ffn_copies: int = 1) -> float:
    n, d = c["seq_len"], c["d_model"]
    return 4 * n * d * d + 2 * n * n * d + ffn_copies * 2 * n * d * d * c["mlp_ratio"]


class _TextFamily(CostTargetedFamily):
    input_kind = "tokens"
    version = "1"
    max_params = 1e8
    model: ClassVar[type[nn.Module]]

    @classmethod
    def estimate_params(cls, c: dict[str, Any]) -> float:
        d, experts = c["d_model"], c.get("experts", 1)
        return c["n_layers"] * (4 + 2 * c["mlp_ratio"] * experts) * d * d + (c["vocab_size"] + c["seq_len"]) * d

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return self.model(config), (token_input(batch_size, config["seq_len"], config["vocab_size"]),)


@FAMILIES.register("bert")
class BertFamily(_TextFamily):
    """BERT-style encoder: learned positions, post-LN layers (head dim 64, GELU MLP x4), tanh pooler,
    classifier; sequences of 16..512 tokens, width 64..1024, 1..24 layers."""

    name = "bert"
    model = Bert
    description = "BERT-style post-LN Transformer encoder over token ids (seq 16-512), pooled classifier"
    macs_range = (5e5, 3e10)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        c = _draw_text(rng, [16, 32, 64, 128, 256, 384, 512], [64, 128, 256, 384, 512, 768, 1024])
        c["num_classes"] = choice(rng, [2, 3, 10])
        return c

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        return c["n_layers"] * _layer_macs(c) + c["d_model"] * (c["d_model"] + c["num_classes"])

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"seq_len": 8, "vocab_size": 64, "d_model": 16, "head_dim": 8, "n_layers": 1, "mlp_ratio": 2,
                "num_classes": 2}


@FAMILIES.register("gpt")
class GPTFamily(_TextFamily):
    """GPT-style decoder: learned positions, pre-LN causal blocks (head dim 64, GELU MLP x4), tied LM
    head over all positions; sequences of 16..1024 tokens, width 64..1024, 1..24 layers."""

    name = "gpt"
    model = GPT
    description = "GPT-style pre-LN causal Transformer decoder over token ids (seq 16-1024), tied LM head"
    macs_range = (2e6, 8e10)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        return _draw_text(rng, [16, 32, 64, 128, 256, 512, 1024], [64, 128, 256, 384, 512, 768, 1024])

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        return c["n_layers"] * _layer_macs(c) + c["seq_len"] * c["d_model"] * c["vocab_size"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"seq_len": 8, "vocab_size": 64, "d_model": 16, "head_dim": 8, "n_layers": 1, "mlp_ratio": 2}


@FAMILIES.register("moe_gpt")
class MoEGPTFamily(_TextFamily):
    """GPT-style decoder whose FFNs are mixtures of 2..16 experts with top-1/2/4 routing (dense form)."""

    name = "moe_gpt"
    model = GPT  # DecoderBlock picks the MoE FFN when the config has experts
    description = "GPT-style decoder with mixture-of-experts FFNs: router softmax, TopK gates, stacked expert MatMuls"
    macs_range = (2e6, 2e10)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        c = _draw_text(rng, [16, 32, 64, 128, 256, 512], [64, 128, 256, 384, 512, 768])
        c["n_layers"] = randint(rng, 1, 12)
        c["experts"] = choice(rng, [2, 4, 8, 16])
        c["top_k"] = choice(rng, [k for k in (1, 2, 4) if k < c["experts"]])
        return c

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        n, d = c["seq_len"], c["d_model"]
        return c["n_layers"] * (_layer_macs(c, c["experts"]) + n * d * c["experts"]) + n * d * c["vocab_size"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"seq_len": 8, "vocab_size": 64, "d_model": 16, "head_dim": 8, "n_layers": 1, "mlp_ratio": 2,
                "experts": 4, "top_k": 2}


__all__ = ["Bert", "BertFamily", "CausalAttention", "DecoderBlock", "EncoderLayer", "GPT", "GPTFamily",
           "MoEFeedForward", "MoEGPTFamily"]
