"""ConvMixer: patches embedded by a strided conv, then blocks of a large-kernel depthwise conv
(spatial mixing, residual) and a 1x1 conv (channel mixing), each GELU + BN, at one resolution.
Sampled by cost target. Inputs ``Bx3xSxS``; 1000 classes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import head, image_input
from archcast.zoo.sampling import CostTargetedFamily, choice, conv_macs, randint


def _conv_gelu_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=k // 2 if stride == 1 else 0, groups=groups),
                         nn.GELU(), nn.BatchNorm2d(cout))


class ConvMixerBlock(nn.Module):
    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.spatial = _conv_gelu_bn(dim, dim, kernel, groups=dim)
        self.channel = _conv_gelu_bn(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel(x + self.spatial(x))


@FAMILIES.register("convmixer")
class ConvMixerFamily(CostTargetedFamily):
    """ConvMixer-h/d: patch size ``patch``, width ``dim``, ``depth`` blocks with depthwise kernel 5..15."""

    name = "convmixer"
    input_kind = "image"
    version = "1"
    description = "ConvMixer: patch conv, large-kernel depthwise (5-15) + pointwise conv blocks at one resolution"
    macs_range = (5e6, 8e9)
    max_params = 6e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        image_size = choice(rng, [96, 128, 160, 192, 224, 256])
        return {
            "image_size": image_size,
            "patch_size": choice(rng, [p for p in (4, 7, 8, 14, 16) if image_size % p == 0] or [8]),
            "dim": choice(rng, [64, 128, 256, 384, 512, 768, 1024, 1536]),
            "depth": randint(rng, 2, 32),
            "kernel": choice(rng, [5, 7, 9, 11, 15]),
            "num_classes": 1000,
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        res, d = c["image_size"] // c["patch_size"], c["dim"]
        block = conv_macs(res, d, d, c["kernel"], d) + conv_macs(res, d, d)
        return conv_macs(res, 3, d, c["patch_size"]) + c["depth"] * block + d * c["num_classes"]

    @classmethod
    def estimate_params(cls, c: dict[str, Any]) -> float:
        d = c["dim"]
        return 3 * d * c["patch_size"] ** 2 + c["depth"] * (d * c["kernel"] ** 2 + d * d) + d * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "patch_size": 4, "dim": 16, "depth": 2, "kernel": 9, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        d, p = config["dim"], config["patch_size"]
        layers = [_conv_gelu_bn(3, d, p, p)] + [ConvMixerBlock(d, config["kernel"]) for _ in range(config["depth"])]
        layers.append(head(d, config["num_classes"]))
        return nn.Sequential(*layers), (image_input(batch_size, config["image_size"]),)


__all__ = ["ConvMixerBlock", "ConvMixerFamily"]
