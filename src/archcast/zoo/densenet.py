"""DenseNet: every layer of a dense block sees the concatenation of all earlier feature maps.
Sampled by cost target. Inputs ``Bx3xSxS``; 1000 classes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import head, image_input
from archcast.zoo.sampling import CostTargetedFamily, choice, conv_macs, randint


def _bn_relu_conv(cin: int, cout: int, k: int) -> nn.Sequential:
    """DenseNet's pre-activation order: BN -> ReLU -> conv (no bias)."""
    return nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, k, padding=k // 2, bias=False))


class DenseBlock(nn.Module):
    """``layers`` times: ``features += [conv3x3(conv1x1(cat(features)))]`` (bottleneck ``bn_size·growth``)."""

    def __init__(self, cin: int, layers: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(_bn_relu_conv(cin + i * growth, bn_size * growth, 1),
                          _bn_relu_conv(bn_size * growth, growth, 3))
            for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


@FAMILIES.register("densenet")
class DenseNetFamily(CostTargetedFamily):
    """DenseNet-BC: 7x7/s2 stem (2·growth) + max-pool, four dense blocks of 1x1 (``bn_size·growth``)
    -> 3x3 (``growth``) layers, transitions (BN-ReLU-1x1 x ``compression``, avg-pool 2) between them."""

    name = "densenet"
    input_kind = "image"
    version = "1"
    description = "DenseNet-BC: dense blocks concatenating all earlier features, 1x1 bottlenecks, pooled transitions"
    macs_range = (1e7, 8e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "image_size": choice(rng, [64, 96, 128, 160, 192, 224, 256, 320]),
            "growth": choice(rng, [8, 12, 16, 24, 32, 48]),
            "bn_size": choice(rng, [2, 4]),
            "block_layers": [randint(rng, 1, 6), randint(rng, 2, 12), randint(rng, 2, 48), randint(rng, 2, 32)],
            "compression": choice(rng, [0.5, 0.5, 1.0]),
            "num_classes": 1000,
        }

    @staticmethod
    def plan(c: dict[str, Any]) -> list[tuple[int, int, int]]:
        """``(in_channels, out_channels, resolution)`` of each dense block; the transition after
        block i maps its output to block i+1's input."""
        out, cin, res = [], 2 * c["growth"], c["image_size"] // 4
        for i, n in enumerate(c["block_layers"]):
            cout = cin + n * c["growth"]
            out.append((cin, cout, res))
            cin, res = (int(cout * c["compression"]), res // 2) if i < len(c["block_layers"]) - 1 else (cout, res)
        return out

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        g, mid = c["growth"], c["bn_size"] * c["growth"]
        macs = conv_macs(c["image_size"] // 2, 3, 2 * g, 7)
        plan = cls.plan(c)
        for i, (cin, cout, res) in enumerate(plan):
            macs += sum(conv_macs(res, cin + j * g, mid) + conv_macs(res, mid, g, 3)
                        for j in range(c["block_layers"][i]))
            if i + 1 < len(plan):
                macs += conv_macs(res, cout, plan[i + 1][0])
        return macs + plan[-1][1] * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "growth": 4, "bn_size": 2, "block_layers": [1, 2, 1, 1], "compression": 0.5,
                "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        g = config["growth"]
        layers: list[nn.Module] = [nn.Conv2d(3, 2 * g, 7, 2, 3, bias=False), nn.BatchNorm2d(2 * g), nn.ReLU(),
                                   nn.MaxPool2d(3, 2, 1)]
        plan = self.plan(config)
        for i, ((cin, cout, _), n) in enumerate(zip(plan, config["block_layers"])):
            layers.append(DenseBlock(cin, n, g, config["bn_size"]))
            if i + 1 < len(plan):
                layers += [_bn_relu_conv(cout, plan[i + 1][0], 1), nn.AvgPool2d(2, 2)]
        cout = plan[-1][1]
        layers += [nn.BatchNorm2d(cout), nn.ReLU(), head(cout, config["num_classes"])]
        return nn.Sequential(*layers), (image_input(batch_size, config["image_size"]),)


__all__ = ["DenseBlock", "DenseNetFamily"]
