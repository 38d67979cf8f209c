"""GhostNet: half of each layer's features come from a cheap depthwise conv on the other half
("ghost" features). Sampled by cost target. Inputs ``Bx3xSxS``; 1000 classes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import SqueezeExcite, conv_bn, image_input
from archcast.zoo.sampling import CostTargetedFamily, choice, conv_macs, divisible, log_grid

# (kernel, expansion channels, out channels, SE, stride) of GhostNet 1.0x, stage by stage
_GHOSTNET = (((3, 16, 16, False, 1),),
             ((3, 48, 24, False, 2),), ((3, 72, 24, False, 1),),
             ((5, 72, 40, True, 2),), ((5, 120, 40, True, 1),),
             ((3, 240, 80, False, 2),), ((3, 200, 80, False, 1), (3, 184, 80, False, 1), (3, 184, 80, False, 1),
                                         (3, 480, 112, True, 1), (3, 672, 112, True, 1)),
             ((5, 672, 160, True, 2),), ((5, 960, 160, False, 1), (5, 960, 160, True, 1), (5, 960, 160, False, 1),
                                         (5, 960, 160, True, 1)))


class GhostModule(nn.Module):
    """``cout`` features: a 1x1 primary conv to ``ceil(cout/ratio)`` channels, then a depthwise
    ``dw_k`` conv makes the "ghosts"; concatenate and keep the first ``cout`` channels."""

    def __init__(self, cin: int, cout: int, ratio: int = 2, dw_k: int = 3, relu: bool = True) -> None:
        super().__init__()
        self.cout, init = cout, -(-cout // ratio)
        a = "relu" if relu else "none"
        self.primary = conv_bn(cin, init, 1, act_name=a)
        self.cheap = conv_bn(init, init * (ratio - 1), dw_k, groups=init, act_name=a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], dim=1)[:, :self.cout]


class GhostBottleneck(nn.Module):
    """ghost(expand) -> [depthwise kxk stride 2] -> [SE] -> ghost(project, no ReLU) + shortcut."""

    def __init__(self, cin: int, mid: int, cout: int, k: int, stride: int, se: bool, ratio: int) -> None:
        super().__init__()
        body: list[nn.Module] = [GhostModule(cin, mid, ratio)]
        if stride > 1:
            body.append(conv_bn(mid, mid, k, stride, groups=mid, act_name="none"))
        if se:
            body.append(SqueezeExcite(mid, divisible(mid / 4, 4), "relu", "hsigmoid"))
        body.append(GhostModule(mid, cout, ratio, relu=False))
        self.body = nn.Sequential(*body)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            conv_bn(cin, cin, k, stride, groups=cin, act_name="none"), conv_bn(cin, cout, 1, act_name="none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


@FAMILIES.register("ghostnet")
class GhostNetFamily(CostTargetedFamily):
    """GhostNet: 3x3/s2 stem (16·w), GhostNet-1.0x's bottleneck table scaled by width ``w`` (expansion
    channels also by ``expand_mult``), ghost ratio 2 or 3, 1x1 conv to 960·w, pool, 1280 FC, linear."""

    name = "ghostnet"
    input_kind = "image"
    version = "1"
    description = "GhostNet: ghost modules (1x1 primary + depthwise cheap features, concat), SE, scaled widths"
    macs_range = (5e6, 2e9)
    max_params = 3e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        w, e = log_grid(rng, 0.25, 3.5), choice(rng, [0.75, 1.0, 1.5])
        blocks = [[k, divisible(mid * w * e, 4), divisible(out * w, 4), se, s]
                  for stage in _GHOSTNET for k, mid, out, se, s in stage]
        return {
            "image_size": choice(rng, [96, 128, 160, 192, 224, 256, 320]),
            "width_mult": w, "expand_mult": e,
            "stem_channels": divisible(16 * w, 4),
            "blocks": blocks,  # [kernel, mid, out, se, stride]
            "ratio": choice(rng, [2, 2, 3]),
            "head_channels": divisible(960 * w, 4),
            "num_classes": 1000,
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        res, cin, r = c["image_size"] // 2, c["stem_channels"], c["ratio"]
        macs = conv_macs(res, 3, cin, 3)

        def ghost(res: int, cin: int, cout: int) -> float:
            init = -(-cout // r)
            return conv_macs(res, cin, init) + conv_macs(res, init, init * (r - 1), 3, init)

        for k, mid, cout, _, s in c["blocks"]:
            ro = res // s
            macs += ghost(res, cin, mid) + ghost(ro, mid, cout) + (conv_macs(ro, mid, mid, k, mid) if s > 1 else 0)
            if s > 1 or cin != cout:
                macs += conv_macs(ro, cin, cin, k, cin) + conv_macs(ro, cin, cout)
            cin, res = cout, ro
        return macs + conv_macs(res, cin, c["head_channels"]) + c["head_channels"] * 1280 + 1280 * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "width_mult": 0.25, "expand_mult": 1.0, "stem_channels": 8,
                "blocks": [[3, 16, 8, False, 1], [3, 24, 12, True, 2], [5, 24, 12, False, 1]], "ratio": 2,
                "head_channels": 32, "num_classes": 10}

    @classmethod
    def estimate_params(cls, c: dict[str, Any]) -> float:
        r, cin, params = c["ratio"], c["stem_channels"], 0.0
        for k, mid, cout, _, s in c["blocks"]:
            params += cin * mid / r + mid * cout / r  # the two ghost modules' primary convs
            params += (k * k * mid if s > 1 else 0) + (cin * cout if s > 1 or cin != cout else 0)
            cin = cout
        return params + cin * c["head_channels"] + c["head_channels"] * 1280 + 1280 * c["num_classes"]

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        cin = config["stem_channels"]
        layers: list[nn.Module] = [conv_bn(3, cin, 3, 2)]
        for k, mid, cout, se, s in config["blocks"]:
            layers.append(GhostBottleneck(cin, mid, cout, k, s, se, config["ratio"]))
            cin = cout
        hc = config["head_channels"]
        layers += [conv_bn(cin, hc, 1), nn.AdaptiveAvgPool2d(1), nn.Conv2d(hc, 1280, 1), nn.ReLU(), nn.Flatten(),
                   nn.Linear(1280, config["num_classes"])]
        return nn.Sequential(*layers), (image_input(batch_size, config["image_size"]),)


__all__ = ["GhostBottleneck", "GhostModule", "GhostNetFamily"]
