"""Normaliser-free networks (NFNet / NF-ResNet): no BatchNorm; weight-standardised convolutions,
gamma-scaled activations, and residual branches scaled by ``alpha`` and fed ``act(x)·beta``.

Weight standardisation acts on the weights only, so the exporter folds it into the conv weights
(as any inference runtime does): the graph shows plain Convs plus the scalar Muls, the scaled
activations and the SE gates. Sampled by cost target. Inputs ``Bx3xSxS``; 1000 classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import image_input
from archcast.zoo.sampling import CappedCostFamily, choice, conv_macs, divisible, log_grid, randint

_GAMMA = {"relu": 1.7139, "gelu": 1.7015}  # makes act(N(0,1)) unit-variance again
_NFNET_WIDTHS = (256, 512, 1536, 1536)  # NFNet-F0..
_NFNET_MAX_DEPTHS = (2, 4, 12, 6)  # NFNet-F1


class WSConv2d(nn.Conv2d):
    """Conv2d whose weight is standardised per output channel: ``gain·(W − mean)/sqrt(var·fan_in + eps)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        mean, var = w.mean((1, 2, 3), keepdim=True), w.var((1, 2, 3), keepdim=True, unbiased=False)
        w = (w - mean) / torch.sqrt(var * w[0].numel() + 1e-4) * self.gain
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ScaledAct(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.act, self.gamma = (nn.ReLU() if name == "relu" else nn.GELU()), _GAMMA[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x) * self.gamma


class NFBlock(nn.Module):
    """``shortcut(act(x)·beta) + alpha·gain·SE(conv1x1(act(g3x3(act(g3x3(act(conv1x1(act(x)·beta))))))))``;
    the shortcut is ``x`` itself unless the block changes shape (then avg-pool + 1x1 WS conv)."""

    def __init__(self, cin: int, cout: int, stride: int, group_width: int, beta: float, alpha: float, act: str) -> None:
        super().__init__()
        mid = divisible(cout * 0.5, group_width)
        groups = mid // group_width
        self.beta, self.alpha = beta, alpha
        self.act = ScaledAct(act)
        self.body = nn.Sequential(WSConv2d(cin, mid, 1), ScaledAct(act),
                                  WSConv2d(mid, mid, 3, stride, 1, groups=groups), ScaledAct(act),
                                  WSConv2d(mid, mid, 3, 1, 1, groups=groups), ScaledAct(act), WSConv2d(mid, cout, 1))
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cout, max(8, cout // 4), 1), nn.ReLU(),
                                nn.Conv2d(max(8, cout // 4), cout, 1), nn.Sigmoid())
        self.skip_gain = nn.Parameter(torch.ones(()))
        self.shortcut = None if stride == 1 and cin == cout else nn.Sequential(
            nn.AvgPool2d(stride) if stride > 1 else nn.Identity(), WSConv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act(x) * self.beta
        y = self.body(pre)
        y = y * (2.0 * self.se(y)) * self.skip_gain
        return (x if self.shortcut is None else self.shortcut(pre)) + self.alpha * y


@FAMILIES.register("nfnet")
class NFNetFamily(CappedCostFamily):
    """NFNet-like: 4-conv stem (/2 twice), four stages of NF bottlenecks (group width 128·w, SE),
    widths ``(256, 512, 1536, 1536)·w``, depths up to NFNet-F1's; scaled ReLU or GELU; alpha 0.2."""

    name = "nfnet"
    input_kind = "image"
    version = "1"
    description = "Normaliser-free NFNet: weight-standardised grouped convs, scaled activations, alpha/beta residuals"
    macs_range = (1e7, 1.5e10)
    max_params = 1e8

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        w = log_grid(rng, 0.0625, 1.0, 0.0625)
        return {
            "image_size": choice(rng, [96, 128, 160, 192, 224, 256, 288]),
            "width_mult": w,
            "widths": [divisible(c * w, 16) for c in _NFNET_WIDTHS],
            "depths": [randint(rng, 1, d) for d in _NFNET_MAX_DEPTHS],
            "group_width": max(8, divisible(128 * w)),
            "activation": choice(rng, ["gelu", "relu"]),
            "alpha": 0.2,
            "num_classes": 1000,
        }

    @staticmethod
    def plan(c: dict[str, Any]) -> list[tuple[int, int, int, int, float]]:
        """``(in_ch, out_ch, stride, in_res, beta)`` of each block (beta from the expected variance)."""
        plan, cin, res, var = [], c["widths"][0] // 2, c["image_size"] // 4, 1.0
        for i, (w, d) in enumerate(zip(c["widths"], c["depths"])):
            for j in range(d):
                s = 2 if j == 0 and i > 0 else 1
                plan.append((cin, w, s, res, round(var ** -0.5, 6)))
                var = 1.0 if j == 0 else var + c["alpha"] ** 2
                cin, res = w, res // s
        return plan

    @classmethod
    def cost(cls, c: dict[str, Any]) -> tuple[float, float]:
        s0, res = c["widths"][0] // 2, c["image_size"] // 2
        macs = conv_macs(res, 3, 16, 3) + conv_macs(res, 16, 32, 3) + conv_macs(res, 32, 64, 3) \
            + conv_macs(res // 2, 64, s0, 3)
        params = 9.0 * (3 * 16 + 16 * 32 + 32 * 64 + 64 * s0)
        for cin, cout, s, r, _ in cls.plan(c):
            mid = divisible(cout * 0.5, c["group_width"])
            g, ro = mid // c["group_width"], r // s
            macs += conv_macs(r, cin, mid) + conv_macs(ro, mid, mid, 3, g) * 2 + conv_macs(ro, mid, cout)
            params += cin * mid + 2 * 9 * mid * mid / g + mid * cout
            if s != 1 or cin != cout:
                macs += conv_macs(ro, cin, cout)
                params += cin * cout
        last = 2 * c["widths"][-1]
        res = cls.plan(c)[-1][3]
        head = last * c["num_classes"]
        return macs + conv_macs(res, c["widths"][-1], last) + head, params + c["widths"][-1] * last + head

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "width_mult": 0.0625, "widths": [16, 32, 96, 96], "depths": [1, 2, 1, 1],
                "group_width": 8, "activation": "gelu", "alpha": 0.2, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        a, s0 = config["activation"], config["widths"][0] // 2
        layers: list[nn.Module] = [WSConv2d(3, 16, 3, 2, 1), ScaledAct(a), WSConv2d(16, 32, 3, 1, 1), ScaledAct(a),
                                   WSConv2d(32, 64, 3, 1, 1), ScaledAct(a), WSConv2d(64, s0, 3, 2, 1)]
        layers += [NFBlock(cin, cout, s, config["group_width"], beta, config["alpha"], a)
                   for cin, cout, s, _, beta in self.plan(config)]
        last = 2 * config["widths"][-1]
        layers += [WSConv2d(config["widths"][-1], last, 1), ScaledAct(a), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                   nn.Linear(last, config["num_classes"])]
        return nn.Sequential(*layers), (image_input(batch_size, config["image_size"]),)


__all__ = ["NFBlock", "NFNetFamily", "ScaledAct", "WSConv2d"]
