"""CNNs built on grouped convolutions: ResNeXt (cardinality), RegNet X/Y (group width, quantised
linear widths) and ShuffleNetV2 (channel split + channel shuffle). Sampled by cost target.

ResNeXt and RegNet share one bottleneck (1x1 -> grouped 3x3 -> channel gate -> 1x1, projection
shortcut) and one block plan, so :meth:`estimate_macs` and :meth:`build` cannot disagree. The
channel gate is one of :data:`~archcast.zoo.layers.GATES` (SE, ECA, CBAM or none).
Inputs ``Bx3xSxS``; 1000 classes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import GATES, conv_bn, gate, head, image_input
from archcast.zoo.sampling import CappedCostFamily, CostTargetedFamily, choice, conv_macs, divisible, log_grid, randint

NUM_CLASSES = 1000

# (in_ch, mid_ch, out_ch, stride, groups, in_res) of each bottleneck block
Plan = list[tuple[int, int, int, int, int, int]]


def _bottleneck_cost(c: dict[str, Any], plan: Plan, stem_macs: int, stem_params: int) -> tuple[float, float]:
    """(MACs, params) of a stem + bottleneck plan + linear head."""
    macs, params = float(stem_macs), float(stem_params)
    for cin, mid, cout, s, g, r in plan:
        ro = r // s
        macs += conv_macs(r, cin, mid) + conv_macs(ro, mid, mid, 3, g) + conv_macs(ro, mid, cout)
        params += cin * mid + mid * mid // g * 9 + mid * cout
        if s != 1 or cin != cout:
            macs += conv_macs(ro, cin, cout)
            params += cin * cout
    cout = plan[-1][2]
    return macs + cout * c["num_classes"], params + cout * c["num_classes"]


class GroupedBottleneck(nn.Module):
    """1x1 (cin -> mid) -> grouped 3x3 (stride) -> gate -> 1x1 (mid -> cout), + shortcut, ReLU."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, groups: int, gate_kind: str) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, mid, 1), conv_bn(mid, mid, 3, stride, groups=groups),
                                  gate(gate_kind, mid, max(8, cin // 4)), conv_bn(mid, cout, 1, act_name="none"))
        self.shortcut = (conv_bn(cin, cout, 1, stride, act_name="none") if stride != 1 or cin != cout
                         else nn.Identity())
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def _bottleneck_net(c: dict[str, Any], plan: Plan, stem: list[nn.Module]) -> nn.Sequential:
    blocks = [GroupedBottleneck(cin, mid, cout, s, g, c["gate"]) for cin, mid, cout, s, g, _ in plan]
    return nn.Sequential(*stem, *blocks, head(plan[-1][2], c["num_classes"]))


# ---------------------------------------------------------------------------- resnext
_RESNEXT_MAX_DEPTHS = (3, 4, 23, 3)  # ResNeXt-101


@FAMILIES.register("resnext")
class ResNeXtFamily(CappedCostFamily):
    """ResNeXt: 7x7 stem + max-pool, four stages of bottlenecks whose 3x3 conv has ``cardinality``
    groups of ``group_width x 2^stage`` channels; stage outputs ``out_width x 2^stage``; optional gate."""

    name = "resnext"
    input_kind = "image"
    version = "1"
    description = "ResNeXt: bottlenecks with grouped 3x3 convs (cardinality x group width), optional SE/ECA/CBAM gate"
    macs_range = (2e7, 1.5e10)
    max_params = 1e8

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        cardinality = choice(rng, [2, 4, 8, 16, 32, 64])
        return {
            "image_size": choice(rng, [96, 128, 160, 192, 224, 256, 320]),
            "stem_channels": choice(rng, [16, 32, 64]),
            "cardinality": cardinality,
            "group_width": choice(rng, [w for w in (2, 4, 8, 16) if cardinality * w <= 256]),
            "out_width": choice(rng, [64, 128, 256]),
            "depths": [randint(rng, 1, d) for d in _RESNEXT_MAX_DEPTHS],
            "gate": choice(rng, list(GATES)),
            "num_classes": NUM_CLASSES,
        }

    @staticmethod
    def plan(c: dict[str, Any]) -> Plan:
        plan, cin, res = [], c["stem_channels"], c["image_size"] // 4
        for i, depth in enumerate(c["depths"]):
            mid, cout = c["cardinality"] * c["group_width"] * 2 ** i, c["out_width"] * 2 ** i
            for j in range(depth):
                s = 2 if (j == 0 and i > 0) else 1
                plan.append((cin, mid, cout, s, c["cardinality"], res))
                cin, res = cout, res // s
        return plan

    @classmethod
    def cost(cls, c: dict[str, Any]) -> tuple[float, float]:
        s = c["stem_channels"]
        return _bottleneck_cost(c, cls.plan(c), conv_macs(c["image_size"] // 2, 3, s, 7), 3 * s * 49)

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "stem_channels": 8, "cardinality": 4, "group_width": 2, "out_width": 16,
                "depths": [1, 1, 1, 1], "gate": "se", "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        s = config["stem_channels"]
        stem = [conv_bn(3, s, 7, 2), nn.MaxPool2d(3, 2, 1)]
        return _bottleneck_net(config, self.plan(config), stem), (image_input(batch_size, config["image_size"]),)


# ---------------------------------------------------------------------------- regnet
def regnet_widths(w0: int, wa: float, wm: float, depth: int, group_width: int) -> tuple[list[int], list[int]]:
    """RegNet's quantised linear widths: per-stage ``(widths, depths)`` from ``u_j = w0 + wa·j``
    snapped to ``w0·wm^round(log(u_j/w0)/log(wm))``, multiples of 8 and of the group width."""
    per_block = []
    for j in range(depth):
        s = round(math.log((w0 + wa * j) / w0) / math.log(wm))
        per_block.append(divisible(w0 * wm ** s))
    widths, depths = [], []
    for w in per_block:
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    widths = [max(group_width, int(round(w / group_width)) * group_width) for w in widths]
    return widths, depths


@FAMILIES.register("regnet")
class RegNetFamily(CappedCostFamily):
    """RegNetX (no gate) / RegNetY (SE) and an ECA variant: 3x3/s2 stem of 32, stages of bottlenecks
    with bottleneck ratio 1 and group width ``group_width``; widths and depths from RegNet's
    quantised linear rule (at most 4 stages, each starting with stride 2)."""

    name = "regnet"
    input_kind = "image"
    version = "1"
    description = "RegNet X/Y: quantised linear stage widths, grouped 3x3 bottlenecks (group width), SE/ECA gate"
    macs_range = (1e7, 6e9)
    max_params = 6e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        while True:  # RegNet keeps designs with at most four stages
            w0, wa, wm = choice(rng, [16, 24, 32, 48, 64, 96]), round(float(rng.uniform(8, 128)), 2), \
                round(float(rng.uniform(1.5, 3.0)), 2)
            g, depth = choice(rng, [8, 16, 24, 32, 48, 64]), randint(rng, 6, 28)
            widths, depths = regnet_widths(w0, wa, wm, depth, g)
            if len(widths) <= 4:
                break
        return {
            "image_size": choice(rng, [96, 128, 160, 192, 224, 256, 288]),
            "w0": w0, "wa": wa, "wm": wm, "group_width": g,
            "widths": widths, "depths": depths,
            "gate": choice(rng, ["none", "se", "se", "eca"]),
            "num_classes": NUM_CLASSES,
        }

    @staticmethod
    def plan(c: dict[str, Any]) -> Plan:
        plan, cin, res = [], 32, c["image_size"] // 2
        for w, d in zip(c["widths"], c["depths"]):
            for j in range(d):
                s = 2 if j == 0 else 1
                plan.append((cin, w, w, s, w // min(c["group_width"], w), res))
                cin, res = w, res // s
        return plan

    @classmethod
    def cost(cls, c: dict[str, Any]) -> tuple[float, float]:
        return _bottleneck_cost(c, cls.plan(c), conv_macs(c["image_size"] // 2, 3, 32, 3), 3 * 32 * 9)

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "w0": 16, "wa": 8.0, "wm": 2.0, "group_width": 8, "widths": [16, 32],
                "depths": [1, 1], "gate": "eca", "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return _bottleneck_net(config, self.plan(config), [conv_bn(3, 32, 3, 2)]), \
            (image_input(batch_size, config["image_size"]),)


# ---------------------------------------------------------------------------- shufflenet
def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups (ShuffleNet), shapes read with ``x.size()``."""
    b, c, h, w = x.size()
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. Stride 1: split channels in half, transform one half (1x1, dw kxk, 1x1),
    concat, shuffle. Stride 2: both branches see the whole input and each halves its width."""

    def __init__(self, cin: int, cout: int, stride: int, k: int) -> None:
        super().__init__()
        self.stride, half = stride, cout // 2
        bin_ = cin if stride == 2 else cin // 2
        self.branch = nn.Sequential(conv_bn(bin_, half, 1),
                                    conv_bn(half, half, k, stride, groups=half, act_name="none"),
                                    conv_bn(half, half, 1))
        self.proj = (nn.Sequential(conv_bn(cin, cin, k, stride, groups=cin, act_name="none"), conv_bn(cin, half, 1))
                     if stride == 2 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            keep, x = x.chunk(2, dim=1)
        else:
            keep = self.proj(x)
        return channel_shuffle(torch.cat([keep, self.branch(x)], dim=1), 2)


@FAMILIES.register("shufflenet")
class ShuffleNetV2Family(CostTargetedFamily):
    """ShuffleNetV2: 3x3/s2 stem (24) + max-pool, three stages (width ``116·w·2^i``, first unit
    stride 2), 1x1 conv to 1024 (2048 when wide), pool, linear. Depthwise kernel 3 or 5."""

    name = "shufflenet"
    input_kind = "image"
    version = "1"
    description = "ShuffleNetV2: channel split, depthwise 3x3/5x5, concat and channel shuffle via view/transpose"
    macs_range = (3e6, 4e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        w = log_grid(rng, 0.25, 3.0)
        return {
            "image_size": choice(rng, [96, 128, 160, 192, 224, 256, 320]),
            "width_mult": w,
            "widths": [divisible(116 * w * 2 ** i) for i in range(3)],
            "repeats": [randint(rng, 1, 6), randint(rng, 2, 12), randint(rng, 1, 6)],
            "kernel": choice(rng, [3, 3, 5]),
            "final_channels": 1024 if w < 1.8 else 2048,
            "num_classes": NUM_CLASSES,
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        k, res, cin = c["kernel"], c["image_size"] // 4, 24
        macs = conv_macs(c["image_size"] // 2, 3, 24, 3)
        for cout, n in zip(c["widths"], c["repeats"]):
            half = cout // 2
            res //= 2
            macs += conv_macs(res, cin, cin, k, cin) + conv_macs(res, cin, half)  # projection branch
            macs += conv_macs(res * 2, cin, half) + conv_macs(res, half, half, k, half) + conv_macs(res, half, half)
            macs += (n - 1) * (2 * conv_macs(res, half, half) + conv_macs(res, half, half, k, half))
            cin = cout
        return macs + conv_macs(res, cin, c["final_channels"]) + c["final_channels"] * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "width_mult": 0.25, "widths": [16, 32, 64], "repeats": [1, 2, 1], "kernel": 3,
                "final_channels": 64, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        layers: list[nn.Module] = [conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]
        cin = 24
        for cout, n in zip(config["widths"], config["repeats"]):
            layers += [ShuffleUnit(cin if i == 0 else cout, cout, 2 if i == 0 else 1, config["kernel"])
                       for i in range(n)]
            cin = cout
        layers += [conv_bn(cin, config["final_channels"], 1), head(config["final_channels"], config["num_classes"])]
        return nn.Sequential(*layers), (image_input(batch_size, config["image_size"]),)


__all__ = ["GroupedBottleneck", "RegNetFamily", "ResNeXtFamily", "ShuffleNetV2Family", "ShuffleUnit",
           "channel_shuffle", "regnet_widths"]
