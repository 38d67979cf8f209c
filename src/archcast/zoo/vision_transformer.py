"""Patch-token image models: ViT/DeiT, Swin (shifted-window attention) and MLP-Mixer.

Sampled by cost target (:class:`~archcast.zoo.sampling.CostTargetedFamily`). Attention is written
as Linear/MatMul/Softmax so the ONNX graph shows every operator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import Attention, EncoderBlock, Mlp, image_input, patch_tokens
from archcast.zoo.sampling import CostTargetedFamily, choice, randint


def _patch_options(image_size: int, patches: list[int], max_tokens: int = 784) -> list[int]:
    return [p for p in patches if image_size % p == 0 and 9 <= (image_size // p) ** 2 <= max_tokens]


@FAMILIES.register("vit")
class ViTFamily(CostTargetedFamily):
    """ViT/DeiT: patch-embedding conv, class (+ optional distillation) token, learned position
    embedding, pre-LN encoder with explicit multi-head attention and a GELU MLP."""

    name = "vit"
    input_kind = "image"
    version = "1"
    description = "ViT/DeiT image transformer: patch conv, cls/distill tokens, pre-LN explicit attention, GELU MLP"
    macs_range = (1.5e7, 3e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        image_size = choice(rng, [96, 112, 128, 160, 192, 224])
        embed_dim = choice(rng, [64, 96, 128, 192, 256, 320, 384, 448, 512])
        head_dim = choice(rng, [h for h in (32, 64) if embed_dim % h == 0])
        return {
            "image_size": image_size,
            "patch_size": choice(rng, _patch_options(image_size, [8, 14, 16, 32])),
            "embed_dim": embed_dim,
            "num_heads": embed_dim // head_dim,
            "depth": randint(rng, 2, 12),
            "mlp_ratio": choice(rng, [2.0, 3.0, 4.0]),
            "qkv_bias": bool(rng.random() < 0.8),
            "distill_token": bool(rng.random() < 0.3),
            "num_classes": choice(rng, [10, 100, 1000]),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        p, d = c["patch_size"], c["embed_dim"]
        grid = (c["image_size"] // p) ** 2
        n = grid + 1 + int(c["distill_token"])
        block = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * int(d * c["mlp_ratio"])
        return grid * 3 * p * p * d + c["depth"] * block + (1 + int(c["distill_token"])) * d * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "patch_size": 8, "embed_dim": 32, "num_heads": 2, "depth": 1,
                "mlp_ratio": 2.0, "qkv_bias": True, "distill_token": True, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return ViT(config), (image_input(batch_size, config["image_size"]),)


@FAMILIES.register("swin")
class SwinFamily(CostTargetedFamily):
    """Swin transformer: 4×4 patch embedding, stages of window attention (window 7) alternating
    with shifted windows (``torch.roll`` + attention mask), relative position bias, patch merging.
    Image 224 has four stages (56→7 tokens a side), image 112 three (28→7)."""

    name = "swin"
    input_kind = "image"
    version = "1"
    description = "Swin transformer: (shifted) 7x7 window attention with relative position bias, patch merging"
    macs_range = (5e6, 2.5e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        image_size = choice(rng, [112, 224])
        stages = 4 if image_size == 224 else 3
        embed_dim = choice(rng, [16, 24, 32, 48, 64, 96])
        depths = [choice(rng, [1, 2]) for _ in range(stages)]
        depths[2] = choice(rng, [1, 2, 4, 6])  # the deep stage, as in Swin-T/S
        return {
            "image_size": image_size,
            "patch_size": 4,
            "window_size": 7,
            "embed_dim": embed_dim,
            "depths": depths,
            "head_dim": choice(rng, [h for h in (8, 16, 32) if embed_dim % h == 0 and embed_dim // h <= 4]),
            "mlp_ratio": choice(rng, [2.0, 4.0]),
            "relative_position_bias": bool(rng.random() < 0.8),
            "num_classes": choice(rng, [10, 100, 1000]),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        res = c["image_size"] // c["patch_size"]
        dim = c["embed_dim"]
        macs = res * res * 3 * c["patch_size"] ** 2 * dim
        for i, depth in enumerate(c["depths"]):
            if i:
                macs += (res // 2) ** 2 * 4 * dim * 2 * dim
                res, dim = res // 2, dim * 2
            n, win = res * res, min(c["window_size"], res) ** 2
            macs += depth * (4 * n * dim * dim + 2 * n * win * dim + 2 * n * dim * int(dim * c["mlp_ratio"]))
        return macs + dim * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        # 56 px → 14 tokens a side: stage 1 has two windows a side, so the shifted block needs its mask
        return {"image_size": 56, "patch_size": 4, "window_size": 7, "embed_dim": 16, "depths": [2, 1],
                "head_dim": 8, "mlp_ratio": 2.0, "relative_position_bias": True, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return Swin(config), (image_input(batch_size, config["image_size"]),)


@FAMILIES.register("mlpmixer")
class MLPMixerFamily(CostTargetedFamily):
    """MLP-Mixer: patch-embedding conv, blocks of token-mixing MLP (across patches) and
    channel-mixing MLP (across features), each pre-LN with a residual; mean-pool head."""

    name = "mlpmixer"
    input_kind = "image"
    version = "1"
    description = "MLP-Mixer: patch conv, token-mixing and channel-mixing GELU MLPs, pre-LN residual blocks"
    macs_range = (1e7, 3e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        image_size = choice(rng, [96, 112, 128, 160, 192, 224])
        return {
            "image_size": image_size,
            "patch_size": choice(rng, _patch_options(image_size, [8, 14, 16, 32])),
            "hidden_dim": choice(rng, [64, 128, 192, 256, 384, 512]),
            "token_mlp_dim": choice(rng, [32, 64, 128, 256, 384]),
            "channel_mlp_ratio": choice(rng, [2, 3, 4]),
            "depth": randint(rng, 2, 12),
            "num_classes": choice(rng, [10, 100, 1000]),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        p, d = c["patch_size"], c["hidden_dim"]
        t = (c["image_size"] // p) ** 2
        block = 2 * d * t * c["token_mlp_dim"] + 2 * t * d * d * c["channel_mlp_ratio"]
        return t * 3 * p * p * d + c["depth"] * block + d * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "patch_size": 8, "hidden_dim": 32, "token_mlp_dim": 16, "channel_mlp_ratio": 2,
                "depth": 1, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return MLPMixer(config), (image_input(batch_size, config["image_size"]),)


# ---------------------------------------------------------------------------- Base/Large sizes
# Separate families, so that vit/swin (and the data set measured on them) keep their configs. A
# parameter cap keeps the export within seconds (ViT-L's 304 M parameters take ~45 s).
@FAMILIES.register("vit_large")
class ViTLargeFamily(ViTFamily):
    """ViT at Base-to-Large widths (512..1024, head dim 64), depth 2..24, images 96..384."""

    name = "vit_large"
    description = "ViT/DeiT at Base-to-Large widths (512-1024), 96-384 px images, parameters capped at 90 M"
    macs_range = (2e8, 1.2e11)
    max_params = 9e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        image_size = choice(rng, [96, 128, 160, 224, 256, 384])
        embed_dim = choice(rng, [512, 640, 768, 1024])
        return {
            "image_size": image_size,
            "patch_size": choice(rng, _patch_options(image_size, [14, 16, 32], max_tokens=1024)),
            "embed_dim": embed_dim,
            "num_heads": embed_dim // 64,
            "depth": randint(rng, 2, 24),
            "mlp_ratio": 4.0,
            "qkv_bias": True,
            "distill_token": bool(rng.random() < 0.3),
            "num_classes": 1000,
        }

    @classmethod
    def estimate_params(cls, c: dict[str, Any]) -> float:
        d = c["embed_dim"]
        return c["depth"] * (4 + 2 * c["mlp_ratio"]) * d * d + 3 * c["patch_size"] ** 2 * d


@FAMILIES.register("swin_large")
class SwinLargeFamily(SwinFamily):
    """Swin-T/S/B/L widths (96/128/192), head dim 32, deep stage 1..18 blocks; 112 px (three stages)
    or 224 px (window 7), or 384 px (window 12)."""

    name = "swin_large"
    version = "2"
    description = "Swin at Tiny-to-Large widths (96-192), window 7 (112/224 px) or 12 (384 px), params capped at 90 M"
    macs_range = (3e8, 6e10)
    max_params = 9e7
    # version 2: MLP ratio, classes and the position bias vary too (no option costs more than version 1)
    widened = {"mlp_ratio": (2.0, 3.0, 4.0), "num_classes": (100, 1000), "relative_position_bias": (False, True)}

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        image_size = choice(rng, [112, 224, 384])
        depths = [choice(rng, [1, 2]), choice(rng, [1, 2]), choice(rng, [1, 2, 6, 10, 14, 18]), choice(rng, [1, 2])]
        return {
            "image_size": image_size,
            "patch_size": 4,
            "window_size": 12 if image_size == 384 else 7,
            "embed_dim": choice(rng, [96, 128, 192]),
            "depths": depths if image_size != 112 else depths[:3],
            "head_dim": 32,
            "mlp_ratio": 4.0,
            "relative_position_bias": True,
            "num_classes": 1000,
        }

    @classmethod
    def estimate_params(cls, c: dict[str, Any]) -> float:
        return sum(depth * 12 * (c["embed_dim"] * 2 ** i) ** 2 for i, depth in enumerate(c["depths"]))


# ============================================================================ torch modules
class ViT(nn.Module):
    """``[B, 3, S, S] -> [B, classes]``. With a distillation token the two heads' logits are
    averaged (DeiT inference)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        d, p = c["embed_dim"], c["patch_size"]
        self.distill = c["distill_token"]
        prefix = 2 if self.distill else 1
        self.patch = nn.Conv2d(3, d, p, stride=p)
        self.tokens = nn.Parameter(torch.randn(1, prefix, d) * 0.02)  # class (+ distillation) token
        self.pos = nn.Parameter(torch.randn(1, (c["image_size"] // p) ** 2 + prefix, d) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(d, c["num_heads"], c["mlp_ratio"], c["qkv_bias"])
                                      for _ in range(c["depth"])])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, c["num_classes"])
        self.head_dist = nn.Linear(d, c["num_classes"]) if self.distill else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = patch_tokens(self.patch(x))  # [B, T, D]
        x = torch.cat([self.tokens.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.norm(self.blocks(x))
        if self.head_dist is None:
            return self.head(x[:, 0])
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """``[B, H, W, C] -> [B·(H/ws)·(W/ws), ws², C]``"""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_merge(x: torch.Tensor, ws: int, b: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`."""
    x = x.view(b, h // ws, w // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, -1)


def shift_mask(res: int, ws: int, shift: int) -> torch.Tensor:
    """``[windows, ws², ws²]``: −100 between tokens that the cyclic shift brought together from
    different regions of the image, else 0."""
    region = torch.zeros(1, res, res, 1)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    for label, (rows, cols) in enumerate((r, c) for r in cuts for c in cuts):
        region[:, rows, cols] = label
    labels = window_partition(region, ws).squeeze(-1)  # [windows, ws²]
    differ = labels[:, :, None] != labels[:, None, :]
    return differ.float() * -100.0


class SwinBlock(nn.Module):
    """Window attention on ``[B, res², C]``; ``shifted`` rolls the map by half a window first."""

    def __init__(self, dim: int, res: int, heads: int, window: int, shifted: bool, mlp_ratio: float,
                 rel_bias: bool) -> None:
        super().__init__()
        self.res, self.ws = res, min(window, res)
        self.shift = self.ws // 2 if shifted and res > window else 0  # one window: nothing to shift
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))
        n = self.ws * self.ws
        if rel_bias:  # a learned bias per head and relative offset, gathered by a fixed index
            self.bias_table = nn.Parameter(torch.randn((2 * self.ws - 1) ** 2, heads) * 0.02)
            coords = torch.stack(torch.meshgrid(torch.arange(self.ws), torch.arange(self.ws),
                                                indexing="ij")).flatten(1)  # [2, n]
            rel = (coords[:, :, None] - coords[:, None, :]) + (self.ws - 1)  # [2, n, n], >= 0
            self.register_buffer("bias_index", rel[0] * (2 * self.ws - 1) + rel[1], persistent=False)
        else:
            self.bias_table = None
        mask = shift_mask(res, self.ws, self.shift) if self.shift else None
        self.register_buffer("mask", mask, persistent=False)
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        y = self.norm1(x).view(b, self.res, self.res, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        bias = None
        if self.bias_table is not None:
            bias = self.bias_table[self.bias_index.view(-1)].view(self.n, self.n, -1).permute(2, 0, 1)
        y = self.attn(window_partition(y, self.ws), bias=bias, mask=self.mask)
        y = window_merge(y, self.ws, b, self.res, self.res)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, -1, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """``[B, res², C] -> [B, (res/2)², 2C]``: concatenate each 2×2 neighbourhood, LN, Linear."""

    def __init__(self, dim: int, res: int) -> None:
        super().__init__()
        self.res = res
        self.norm, self.reduce = nn.LayerNorm(4 * dim), nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, self.res, self.res, c)
        x = torch.cat([x[:, i::2, j::2] for j in (0, 1) for i in (0, 1)], dim=-1)
        return self.reduce(self.norm(x.reshape(b, -1, 4 * c)))


class Swin(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        dim, res = c["embed_dim"], c["image_size"] // c["patch_size"]
        self.patch = nn.Conv2d(3, dim, c["patch_size"], stride=c["patch_size"])
        layers: list[nn.Module] = [nn.LayerNorm(dim)]
        for i, depth in enumerate(c["depths"]):
            if i:
                layers.append(PatchMerging(dim, res))
                dim, res = 2 * dim, res // 2
            layers += [SwinBlock(dim, res, dim // c["head_dim"], c["window_size"], j % 2 == 1, c["mlp_ratio"],
                                 c["relative_position_bias"]) for j in range(depth)]
        self.stages = nn.Sequential(*layers)
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, c["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(patch_tokens(self.patch(x)))
        return self.head(self.norm(x).mean(1))


class MixerBlock(nn.Module):
    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1, self.token_mlp = nn.LayerNorm(dim), Mlp(tokens, token_hidden)
        self.norm2, self.channel_mlp = nn.LayerNorm(dim), Mlp(dim, channel_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class MLPMixer(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        d, p = c["hidden_dim"], c["patch_size"]
        tokens = (c["image_size"] // p) ** 2
        self.patch = nn.Conv2d(3, d, p, stride=p)
        self.blocks = nn.Sequential(*[MixerBlock(tokens, d, c["token_mlp_dim"], c["channel_mlp_ratio"] * d)
                                      for _ in range(c["depth"])])
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, c["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(patch_tokens(self.patch(x)))
        return self.head(self.norm(x).mean(1))


__all__ = ["MLPMixer", "MLPMixerFamily", "Swin", "SwinFamily", "SwinLargeFamily", "ViT", "ViTFamily",
           "ViTLargeFamily"]
