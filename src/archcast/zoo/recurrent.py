"""Recurrent networks: an LSTM/GRU sequence model over token ids (``rnn``) and Sequencer, an image
model whose token mixer is a pair of bidirectional LSTMs along rows and columns (``sequencer``).
``nn.LSTM``/``nn.GRU`` export as ONNX LSTM/GRU ops. Sampled by cost target."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import Mlp, image_input, token_input
from archcast.zoo.sampling import CappedCostFamily, CostTargetedFamily, choice, conv_macs, randint

_GATES = {"lstm": 4, "gru": 3}  # gate matrices per cell


class RNNModel(nn.Module):
    """Token ids ``[B, L]`` -> embedding -> stacked (bi)LSTM/GRU -> ``[B, L, out]`` (a language-model
    head, or per-token tags) or ``[B, out]`` from the last step (``pool="last"``)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        rnn = nn.LSTM if c["cell"] == "lstm" else nn.GRU
        self.embed = nn.Embedding(c["vocab_size"], c["embed_dim"])
        self.rnn = rnn(c["embed_dim"], c["hidden"], num_layers=c["num_layers"], batch_first=True,
                       bidirectional=c["bidirectional"])
        self.last = c["pool"] == "last"
        self.head = nn.Linear(c["hidden"] * (2 if c["bidirectional"] else 1), c["num_outputs"])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(self.embed(ids))
        return self.head(y[:, -1] if self.last else y)


@FAMILIES.register("rnn")
class RNNFamily(CostTargetedFamily):
    """Embedding + 1..4 layers of LSTM or GRU (optionally bidirectional), hidden 8..1024, over
    sequences of 8..512 tokens; a per-token head (language model / tagger) or a last-step classifier."""

    name = "rnn"
    input_kind = "tokens"
    version = "1"
    description = "LSTM/GRU sequence models over token ids: stacked, optionally bidirectional, LM or classifier head"
    macs_range = (5e4, 5e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        pool = choice(rng, ["all", "last"])
        return {
            "cell": choice(rng, ["lstm", "gru"]),
            "seq_len": choice(rng, [8, 16, 32, 64, 128, 256, 512]),
            "vocab_size": choice(rng, [64, 256, 1024, 4096, 10000]),
            "embed_dim": choice(rng, [8, 16, 32, 64, 128, 256, 512]),
            "hidden": choice(rng, [8, 16, 32, 64, 128, 256, 512, 1024]),
            "num_layers": randint(rng, 1, 4),
            "bidirectional": bool(rng.random() < 0.3),
            "pool": pool,
            "num_outputs": choice(rng, [2, 10, 100] if pool == "last" else [16, 256, 1024, 4096]),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        dirs, h, g = 2 if c["bidirectional"] else 1, c["hidden"], _GATES[c["cell"]]
        macs, fin = 0.0, c["embed_dim"]
        for _ in range(c["num_layers"]):
            macs += c["seq_len"] * dirs * g * h * (fin + h)
            fin = dirs * h
        return macs + (1 if c["pool"] == "last" else c["seq_len"]) * fin * c["num_outputs"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"cell": "lstm", "seq_len": 8, "vocab_size": 32, "embed_dim": 8, "hidden": 8, "num_layers": 2,
                "bidirectional": True, "pool": "last", "num_outputs": 2}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return RNNModel(config), (token_input(batch_size, config["seq_len"], config["vocab_size"]),)


# ---------------------------------------------------------------------------- Sequencer
class BiLSTM2D(nn.Module):
    """``[B, H, W, C] -> [B, H, W, C]``: a bidirectional LSTM along each column and one along each
    row (hidden ``h`` per direction), concatenated, then a linear back to ``C``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.rnn_v = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.rnn_h = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(4 * hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        v, _ = self.rnn_v(x.permute(0, 2, 1, 3).reshape(b * w, h, c))  # down the columns
        v = v.reshape(b, w, h, -1).permute(0, 2, 1, 3)
        r, _ = self.rnn_h(x.reshape(b * h, w, c))  # along the rows
        return self.proj(torch.cat([v, r.reshape(b, h, w, -1)], dim=-1))


class SequencerBlock(nn.Module):
    def __init__(self, dim: int, hidden: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1, self.mixer = nn.LayerNorm(dim), BiLSTM2D(dim, hidden)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Sequencer(nn.Module):
    """Patch embedding (conv ``patch``/``patch``) -> stages of Sequencer blocks on ``[B, H, W, C]``,
    2x2/s2 conv downsampling between stages -> LayerNorm, mean, linear."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        w = c["widths"]
        self.embed = nn.Conv2d(3, w[0], c["patch_size"], c["patch_size"])
        self.stages, self.downs = nn.ModuleList(), nn.ModuleList()
        for i, (dim, depth, hidden) in enumerate(zip(w, c["depths"], c["hiddens"])):
            self.downs.append(nn.Conv2d(w[i - 1], dim, 2, 2) if i else nn.Identity())
            self.stages.append(nn.Sequential(*[SequencerBlock(dim, hidden, c["mlp_ratio"]) for _ in range(depth)]))
        self.norm, self.head = nn.LayerNorm(w[-1]), nn.Linear(w[-1], c["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for down, stage in zip(self.downs, self.stages):
            x = stage(down(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # blocks work channels-last
        return self.head(self.norm(x.mean((2, 3))))


@FAMILIES.register("sequencer")
class SequencerFamily(CappedCostFamily):
    """Sequencer2D-like: patch 7 (or 4/8), 2..3 stages, BiLSTM2D token mixing + GELU MLP channel mixing."""

    name = "sequencer"
    input_kind = "image"
    version = "1"
    description = "Sequencer: bidirectional LSTMs along rows and columns as the token mixer, GELU MLP, patch stages"
    macs_range = (5e6, 4e9)
    max_params = 8e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        stages = randint(rng, 2, 3)
        base = choice(rng, [32, 48, 64, 96, 128, 192])
        widths = [base * 2 ** min(i, 1) for i in range(stages)]
        return {
            "image_size": choice(rng, [56, 112, 168, 224]),
            "patch_size": 7,
            "widths": widths,
            "depths": [randint(rng, 1, 4), randint(rng, 1, 8), randint(rng, 1, 4)][:stages],
            "hiddens": [w // 4 for w in widths],
            "mlp_ratio": choice(rng, [2.0, 3.0]),
            "num_classes": 1000,
        }

    @classmethod
    def cost(cls, c: dict[str, Any]) -> tuple[float, float]:
        w, res = c["widths"], c["image_size"] // c["patch_size"]
        macs, params = conv_macs(res, 3, w[0], c["patch_size"]), 0.0
        for i, (dim, depth, h) in enumerate(zip(w, c["depths"], c["hiddens"])):
            if i:
                res //= 2
                macs += conv_macs(res, w[i - 1], dim, 2)
            lstm = 2 * 2 * 4 * h * (dim + h)  # two directions, two axes, four gates
            block = lstm + 4 * h * dim + 2 * dim * int(dim * c["mlp_ratio"])
            macs += depth * res * res * block
            params += depth * block
        return macs + w[-1] * c["num_classes"], params

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 28, "patch_size": 7, "widths": [8, 16], "depths": [1, 1], "hiddens": [4, 4],
                "mlp_ratio": 2.0, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return Sequencer(config), (image_input(batch_size, config["image_size"]),)


__all__ = ["BiLSTM2D", "RNNFamily", "RNNModel", "Sequencer", "SequencerBlock", "SequencerFamily"]
