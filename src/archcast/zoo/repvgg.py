"""Re-parameterisable multi-branch CNNs in their train-time form: RepVGG (3x3 + 1x1 + identity-BN
branches summed) and MobileOne (``k`` over-parameterised depthwise and pointwise branches, a 1x1
scale branch and an identity-BN branch). Exported as trained, so every branch is in the graph (BN
folds into its conv; the identity BN stays a BatchNormalization). Sampled by cost target."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import conv_bn, head, image_input
from archcast.zoo.sampling import CostTargetedFamily, choice, conv_macs, randint

_STAGE_MULT = (1, 2, 4, 8)  # widths a·64, a·128, a·256, b·512 after a stem of min(64, 64a)


class MultiBranch(nn.Module):
    """``act(Σ branches(x))``: ``k`` conv-BN branches of kernel ``kernel`` (+ a 1x1 conv-BN when
    ``kernel`` > 1) + an identity BN when shapes allow; ``groups`` = channels gives MobileOne's
    depthwise half."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, k: int, groups: int = 1) -> None:
        super().__init__()
        self.branches = nn.ModuleList(conv_bn(cin, cout, kernel, stride, groups=groups, act_name="none")
                                      for _ in range(k))
        if kernel > 1:
            self.branches.append(conv_bn(cin, cout, 1, stride, groups=groups, act_name="none"))
        if stride == 1 and cin == cout:
            self.branches.append(nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branches[0](x)
        for branch in self.branches[1:]:
            y = y + branch(x)
        return self.act(y)


def _block_macs(res: int, cin: int, cout: int, s: int, c: dict[str, Any]) -> float:
    ro = res // s
    if c["style"] == "repvgg":
        return conv_macs(ro, cin, cout, 3) + conv_macs(ro, cin, cout)
    k = c["branches"]
    return k * conv_macs(ro, cin, cin, 3, cin) + conv_macs(ro, cin, cin, 1, cin) + k * conv_macs(ro, cin, cout)


@FAMILIES.register("repvgg")
class RepVGGFamily(CostTargetedFamily):
    """RepVGG-A/B-like stage widths (``a``, ``b`` multipliers) and depths; ``style`` ``repvgg``
    (3x3 + 1x1 + identity branches) or ``mobileone`` (``branches`` depthwise 3x3 + 1x1 scale +
    identity, then ``branches`` pointwise + identity). Stride 2 at the stem and each stage's start."""

    name = "repvgg"
    input_kind = "image"
    version = "1"
    description = "RepVGG / MobileOne train-time multi-branch blocks (kxk + 1x1 + identity-BN branches summed)"
    macs_range = (1e7, 1.5e10)
    max_params = 6e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        style = choice(rng, ["repvgg", "mobileone"])
        a = choice(rng, [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0])
        return {
            "image_size": choice(rng, [96, 128, 160, 192, 224, 256, 320]),
            "style": style,
            "branches": 1 if style == "repvgg" else choice(rng, [1, 2, 3, 4]),
            "a": a, "b": choice(rng, [a, 2 * a, 2.5, 4.0, 5.0]) if a >= 1 else a,
            "depths": [randint(rng, 1, 4), randint(rng, 2, 6), randint(rng, 2, 16), 1],
            "num_classes": 1000,
        }

    @staticmethod
    def plan(c: dict[str, Any]) -> list[tuple[int, int, int, int]]:
        """``(in_ch, out_ch, stride, in_res)`` of every block, the stem first."""
        widths = [int(64 * c["a"] * m) for m in _STAGE_MULT[:3]] + [int(512 * c["b"])]
        cin, res = min(64, int(64 * c["a"])), c["image_size"]
        plan = [(3, cin, 2, res)]
        res //= 2
        for w, d in zip(widths, c["depths"]):
            for j in range(d):
                s = 2 if j == 0 else 1
                plan.append((cin, w, s, res))
                cin, res = w, res // s
        return plan

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        plan = cls.plan(c)
        _, stem, _, res = plan[0]
        macs = conv_macs(res // 2, 3, stem, 3) + conv_macs(res // 2, 3, stem)
        return macs + sum(_block_macs(r, ci, co, s, c) for ci, co, s, r in plan[1:]) + plan[-1][1] * c["num_classes"]

    @classmethod
    def estimate_params(cls, c: dict[str, Any]) -> float:
        return sum(_block_macs(1 * s, ci, co, s, c) for ci, co, s, _ in cls.plan(c)[1:])  # res 1: weights

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "style": "mobileone", "branches": 2, "a": 0.25, "b": 0.25, "depths": [1, 2, 1, 1],
                "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        plan = self.plan(config)
        layers: list[nn.Module] = [MultiBranch(3, plan[0][1], 3, 2, 1)]
        for cin, cout, s, _ in plan[1:]:
            if config["style"] == "repvgg":
                layers.append(MultiBranch(cin, cout, 3, s, 1))
            else:  # MobileOne: depthwise half (with the stride), then pointwise half
                k = config["branches"]
                layers += [MultiBranch(cin, cin, 3, s, k, groups=cin), MultiBranch(cin, cout, 1, 1, k)]
        layers.append(head(plan[-1][1], config["num_classes"]))
        return nn.Sequential(*layers), (image_input(batch_size, config["image_size"]),)


__all__ = ["MultiBranch", "RepVGGFamily"]
