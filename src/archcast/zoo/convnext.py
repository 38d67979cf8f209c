"""ConvNeXt: a pure ConvNet modernised towards the vision transformers (depthwise k×k conv, LayerNorm
over channels, inverted GELU MLP, layer scale). Sampled by cost target."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import LayerNorm2d, Mlp, image_input
from archcast.zoo.sampling import CostTargetedFamily, choice, randint


@FAMILIES.register("convnext")
class ConvNeXtFamily(CostTargetedFamily):
    """ConvNeXt: patchify stem, four stages of (depthwise k×k conv, LayerNorm over channels,
    inverted MLP, layer scale, residual), LayerNorm + stride-2 conv between stages."""

    name = "convnext"
    input_kind = "image"
    version = "1"
    description = "ConvNeXt: depthwise 7x7 conv, channel LayerNorm, inverted GELU MLP, layer scale; 4 stages"
    macs_range = (2e7, 2e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        base = choice(rng, [24, 32, 40, 48, 64, 80, 96])
        return {
            "image_size": choice(rng, [96, 128, 160, 192, 224]),
            "widths": [base, 2 * base, 4 * base, 8 * base],
            "depths": [randint(rng, 1, 3), randint(rng, 1, 3), randint(rng, 1, 9), randint(rng, 1, 3)],
            # 7x7 is ConvNeXt's choice; smaller kernels show up as in ablations
            "kernel_sizes": [choice(rng, [3, 5, 7, 7, 7]) for _ in range(4)],
            "mlp_ratio": choice(rng, [2, 3, 4]),
            "layer_scale_init": 1e-6,
            "num_classes": choice(rng, [10, 100, 1000]),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        res = c["image_size"] // 4
        macs = res * res * 3 * 16 * c["widths"][0]
        for i, (w, d, k) in enumerate(zip(c["widths"], c["depths"], c["kernel_sizes"])):
            if i:
                res //= 2
                macs += res * res * c["widths"][i - 1] * 4 * w
            macs += d * res * res * (w * k * k + 2 * w * w * c["mlp_ratio"])
        return macs + c["widths"][-1] * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "widths": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "kernel_sizes": [7, 7, 3, 3],
                "mlp_ratio": 2, "layer_scale_init": 1e-6, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return ConvNeXt(config), (image_input(batch_size, config["image_size"]),)


# A separate family, so that convnext (and the data set measured on it) keeps its configs; the
# parameter cap keeps the export within seconds.
@FAMILIES.register("convnext_large")
class ConvNeXtLargeFamily(ConvNeXtFamily):
    """ConvNeXt-T/S/B/L widths (base 96/128/192), depths up to (3, 3, 27, 3), kernel 7, images 96..384."""

    name = "convnext_large"
    description = "ConvNeXt at Tiny-to-Large widths (96-192), 96-384 px images, parameters capped at 90 M"
    macs_range = (3e8, 1e11)
    max_params = 9e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        base = choice(rng, [96, 128, 192])
        return {
            "image_size": choice(rng, [96, 128, 160, 224, 256, 288, 320, 384]),
            "widths": [base, 2 * base, 4 * base, 8 * base],
            "depths": [randint(rng, 1, 3), randint(rng, 1, 3), choice(rng, [1, 3, 9, 15, 21, 27]), randint(rng, 1, 3)],
            "kernel_sizes": [7, 7, 7, 7],
            "mlp_ratio": 4,
            "layer_scale_init": 1e-6,
            "num_classes": 1000,
        }

    @classmethod
    def estimate_params(cls, c: dict[str, Any]) -> float:
        w = c["widths"]
        blocks = sum(d * (wi * k * k + 2 * wi * wi * c["mlp_ratio"])
                     for wi, d, k in zip(w, c["depths"], c["kernel_sizes"]))
        return blocks + sum(4 * a * b for a, b in zip(w, w[1:])) + w[-1] * c["num_classes"]


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, kernel: int, mlp_ratio: int, ls_init: float) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio * dim)
        self.gamma = nn.Parameter(torch.full((dim,), ls_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).permute(0, 2, 3, 1)  # channels last: LayerNorm and the MLP act on C
        y = self.gamma * self.mlp(self.norm(y))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        w = c["widths"]
        layers: list[nn.Module] = [nn.Conv2d(3, w[0], 4, stride=4), LayerNorm2d(w[0])]
        for i, (dim, depth, k) in enumerate(zip(w, c["depths"], c["kernel_sizes"])):
            if i:
                layers += [LayerNorm2d(w[i - 1]), nn.Conv2d(w[i - 1], dim, 2, stride=2)]
            layers += [ConvNeXtBlock(dim, k, c["mlp_ratio"], c["layer_scale_init"]) for _ in range(depth)]
        self.features = nn.Sequential(*layers)
        self.norm, self.head = nn.LayerNorm(w[-1], eps=1e-6), nn.Linear(w[-1], c["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.features(x).mean((2, 3))))


__all__ = ["ConvNeXt", "ConvNeXtBlock", "ConvNeXtFamily", "ConvNeXtLargeFamily"]
