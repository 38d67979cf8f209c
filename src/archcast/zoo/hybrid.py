"""Hybrid convolution-attention image models: CoAtNet (MBConv stages then relative-attention
transformer stages) and EfficientFormer (pooling-mixer Meta4D blocks on feature maps, attention
Meta3D blocks at the last stage). Sampled by cost target. Inputs ``Bx3xSxS``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import Attention, EncoderBlock, Mlp, conv_bn, image_input, patch_tokens
from archcast.zoo.mobile import MBConv
from archcast.zoo.sampling import CappedCostFamily, choice, conv_macs, randint


def _attention_macs(n: int, d: int, mlp_ratio: float) -> float:
    return 4 * n * d * d + 2 * n * n * d + 2 * n * d * int(d * mlp_ratio)


# ---------------------------------------------------------------------------- CoAtNet
class RelAttentionBlock(nn.Module):
    """Pre-LN transformer block on ``[B, res², C]`` whose attention adds a learned bias per head and
    2-D relative offset (gathered from a table by a fixed index), as CoAtNet's global attention."""

    def __init__(self, dim: int, res: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))
        self.bias_table = nn.Parameter(torch.randn((2 * res - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")).flatten(1)
        rel = coords[:, :, None] - coords[:, None, :] + (res - 1)
        self.register_buffer("bias_index", rel[0] * (2 * res - 1) + rel[1], persistent=False)
        self.n = res * res

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias_table[self.bias_index.view(-1)].view(self.n, self.n, -1).permute(2, 0, 1)
        x = x + self.attn(self.norm1(x), bias=bias)
        return x + self.mlp(self.norm2(x))


class CoAtNetTransformerStage(nn.Module):
    """Max-pool 3x3/s2, 1x1 conv to the stage width, then ``depth`` relative-attention blocks; out as a map."""

    def __init__(self, cin: int, dim: int, res: int, depth: int, head_dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.down, self.proj, self.res = nn.MaxPool2d(3, 2, 1), nn.Conv2d(cin, dim, 1), res
        self.blocks = nn.Sequential(*[RelAttentionBlock(dim, res, dim // head_dim, mlp_ratio) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(patch_tokens(self.proj(self.down(x))))
        b, _, c = y.shape
        return y.transpose(1, 2).reshape(b, c, self.res, self.res)


@FAMILIES.register("coatnet")
class CoAtNetFamily(CappedCostFamily):
    """CoAtNet C-C-T-T: conv stem (2 convs, /2), two MBConv stages (/4, /8; expansion 4, SE, GELU),
    two transformer stages (/16, /32) with 2-D relative position bias; widths ``w·(1, 1.5, 3, 6, 12)``-ish
    as CoAtNet-0..3; mean pool, LayerNorm, linear."""

    name = "coatnet"
    input_kind = "image"
    version = "1"
    description = "CoAtNet: MBConv stages then transformer stages with 2-D relative attention bias (C-C-T-T)"
    macs_range = (1e7, 8e9)
    max_params = 6e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        base = choice(rng, [16, 24, 32, 48, 64, 96, 128, 192])
        return {
            "image_size": choice(rng, [64, 96, 128, 160, 192, 224]),
            "widths": [base, int(base * 1.5), 3 * base, 6 * base, 12 * base],
            "depths": [randint(rng, 1, hi) for hi in (2, 3, 6, 14, 2)],
            "head_dim": 32,
            "mlp_ratio": 4.0,
            "num_classes": 1000,
        }

    @classmethod
    def cost(cls, c: dict[str, Any]) -> tuple[float, float]:
        w, d, res = c["widths"], c["depths"], c["image_size"] // 2
        macs = conv_macs(res, 3, w[0], 3) + (d[0] - 1) * conv_macs(res, w[0], w[0], 3)
        params, cin = 27 * w[0] + (d[0] - 1) * 9 * w[0] ** 2, w[0]
        for i in (1, 2):  # MBConv: expand 4, depthwise 3x3 (stride 2 first), project
            for j in range(d[i]):
                res //= 2 if j == 0 else 1
                mid = 4 * cin
                macs += conv_macs(res * (2 if j == 0 else 1), cin, mid) + conv_macs(res, mid, mid, 3, mid) \
                    + conv_macs(res, mid, w[i])
                params += cin * mid + 9 * mid + mid * w[i]
                cin = w[i]
        for i in (3, 4):
            res //= 2
            macs += conv_macs(res, cin, w[i]) + d[i] * _attention_macs(res * res, w[i], c["mlp_ratio"])
            params += cin * w[i] + d[i] * (4 + 2 * c["mlp_ratio"]) * w[i] ** 2
            cin = w[i]
        return macs + cin * c["num_classes"], params + cin * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 64, "widths": [8, 12, 24, 32, 64], "depths": [1, 1, 1, 1, 1], "head_dim": 16,
                "mlp_ratio": 2.0, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        w, d, res = config["widths"], config["depths"], config["image_size"] // 2
        layers: list[nn.Module] = [conv_bn(3, w[0], 3, 2, act_name="gelu")]
        layers += [conv_bn(w[0], w[0], 3, act_name="gelu") for _ in range(d[0] - 1)]
        cin = w[0]
        for i in (1, 2):
            for j in range(d[i]):
                layers.append(MBConv(cin, w[i], 3, 2 if j == 0 else 1, 4, act_name="gelu", se_squeeze=max(8, cin // 4),
                                     se_act="gelu"))
                cin = w[i]
            res //= 2
        for i in (3, 4):
            res //= 2
            layers.append(CoAtNetTransformerStage(cin, w[i], res, d[i], config["head_dim"], config["mlp_ratio"]))
            cin = w[i]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LayerNorm(cin), nn.Linear(cin, config["num_classes"])]
        return nn.Sequential(*layers), (image_input(batch_size, config["image_size"]),)


# ---------------------------------------------------------------------------- EfficientFormer
class Meta4D(nn.Module):
    """``x + (pool(x) − x)`` (average-pool token mixer), then ``x + conv-MLP(x)`` (1x1, BN, GELU, 1x1, BN)."""

    def __init__(self, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.mlp = nn.Sequential(conv_bn(dim, hidden, 1, act_name="gelu"), conv_bn(hidden, dim, 1, act_name="none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + (self.pool(x) - x)
        return x + self.mlp(x)


class Meta3DStage(nn.Module):
    """Flatten the map to tokens and run ``depth`` pre-LN attention blocks (EfficientFormer's last blocks)."""

    def __init__(self, dim: int, depth: int, head_dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[EncoderBlock(dim, dim // head_dim, mlp_ratio, True) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(patch_tokens(x))


@FAMILIES.register("efficientformer")
class EfficientFormerFamily(CappedCostFamily):
    """EfficientFormer-L1..L7-like: stem of two 3x3/s2 conv-BN-ReLU, four stages of Meta4D blocks
    with 3x3/s2 conv-BN downsampling between them; the last ``attention_blocks`` blocks of stage 4
    are Meta3D (attention on the flattened /32 map); mean of tokens, LayerNorm, linear."""

    name = "efficientformer"
    input_kind = "image"
    version = "1"
    description = "EfficientFormer: pooling-mixer Meta4D conv blocks, attention Meta3D blocks on the last stage"
    macs_range = (5e6, 8e9)
    max_params = 6e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        widths = choice(rng, [[24, 48, 96, 192], [48, 96, 224, 448], [64, 128, 320, 512], [96, 192, 384, 768],
                              [32, 64, 160, 256]])
        depths = [randint(rng, 1, 6), randint(rng, 1, 6), randint(rng, 2, 18), randint(rng, 1, 8)]
        return {
            "image_size": choice(rng, [64, 96, 128, 160, 192, 224, 256]),
            "widths": widths, "depths": depths,
            "attention_blocks": randint(rng, 1, depths[3]),
            "head_dim": 32, "mlp_ratio": 4.0,
            "num_classes": 1000,
        }

    @classmethod
    def cost(cls, c: dict[str, Any]) -> tuple[float, float]:
        w, d, r = c["widths"], c["depths"], c["mlp_ratio"]
        res = c["image_size"] // 4
        macs = conv_macs(res * 2, 3, w[0] // 2, 3) + conv_macs(res, w[0] // 2, w[0], 3)
        params = 0.0
        for i in range(4):
            if i:
                res //= 2
                macs += conv_macs(res, w[i - 1], w[i], 3)
                params += 9 * w[i - 1] * w[i]
            n4 = d[i] - (c["attention_blocks"] if i == 3 else 0)
            macs += n4 * 2 * conv_macs(res, w[i], int(w[i] * r))
            params += n4 * 2 * r * w[i] ** 2
        n3 = c["attention_blocks"]
        macs += n3 * _attention_macs(res * res, w[3], r)
        params += n3 * (4 + 2 * r) * w[3] ** 2
        return macs + w[3] * c["num_classes"], params + w[3] * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 64, "widths": [8, 16, 24, 32], "depths": [1, 1, 1, 2], "attention_blocks": 1,
                "head_dim": 16, "mlp_ratio": 2.0, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        w, d, r = config["widths"], config["depths"], config["mlp_ratio"]
        layers: list[nn.Module] = [conv_bn(3, w[0] // 2, 3, 2), conv_bn(w[0] // 2, w[0], 3, 2)]
        for i in range(4):
            if i:
                layers.append(conv_bn(w[i - 1], w[i], 3, 2, act_name="none"))
            n3 = config["attention_blocks"] if i == 3 else 0
            layers += [Meta4D(w[i], r) for _ in range(d[i] - n3)]
        layers.append(Meta3DStage(w[3], config["attention_blocks"], config["head_dim"], r))
        model = nn.Sequential(*layers)
        return _TokenHead(model, w[3], config["num_classes"]), (image_input(batch_size, config["image_size"]),)


class _TokenHead(nn.Module):
    """``features`` (ending in tokens ``[B, T, C]``) -> mean over tokens -> LayerNorm -> linear."""

    def __init__(self, features: nn.Module, dim: int, classes: int) -> None:
        super().__init__()
        self.features, self.norm, self.head = features, nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.features(x).mean(1)))


__all__ = ["CoAtNetFamily", "CoAtNetTransformerStage", "EfficientFormerFamily", "Meta3DStage", "Meta4D",
           "RelAttentionBlock"]
