"""Dense-prediction networks with upsampling: UNet segmentation (skip concatenations, ConvTranspose
or Resize upsampling) and a RetinaNet-style detector (ResNet backbone, FPN with nearest Resize and
lateral adds, shared classification/box heads over several scales). Sampled by cost target."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.cnn import ResBlock
from archcast.zoo.layers import conv_bn, image_input
from archcast.zoo.sampling import CappedCostFamily, choice, conv_macs, randint


# ---------------------------------------------------------------------------- UNet
def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn(cin, cout, 3), conv_bn(cout, cout, 3))


class UNet(nn.Module):
    """``[B, 3, S, S] -> [B, classes, S, S]``: ``levels`` encoder levels (double 3x3 conv, max-pool),
    a bottleneck, and a decoder that upsamples (ConvTranspose 2x2/s2, or bilinear Resize + 1x1 conv),
    concatenates the encoder map of the same size and applies a double conv."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        widths = [c["base_width"] * 2 ** i for i in range(c["levels"] + 1)]
        self.down = nn.ModuleList(_double_conv(cin, cout) for cin, cout in zip([3] + widths[:-2], widths[:-1]))
        self.pool = nn.MaxPool2d(2)
        self.bottom = _double_conv(widths[-2], widths[-1])
        self.transpose = c["upsample"] == "transpose"
        self.up = nn.ModuleList(nn.ConvTranspose2d(w2, w1, 2, 2) if self.transpose else nn.Conv2d(w2, w1, 1)
                                for w1, w2 in zip(widths[-2::-1], widths[:0:-1]))
        self.fuse = nn.ModuleList(_double_conv(2 * w, w) for w in widths[-2::-1])
        self.out = nn.Conv2d(widths[0], c["num_classes"], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips)):
            if not self.transpose:
                x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = up(x)
            x = fuse(torch.cat([skip, x], dim=1))
        return self.out(x)


@FAMILIES.register("unet")
class UNetFamily(CappedCostFamily):
    """UNet with 2..5 levels, base width 4..64, ConvTranspose or bilinear-Resize upsampling, 1..21 classes."""

    name = "unet"
    input_kind = "image"
    version = "1"
    description = "UNet segmentation: encoder-decoder, skip concatenations, ConvTranspose or bilinear Resize upsampling"
    macs_range = (5e5, 1.5e11)
    max_params = 4e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        levels = randint(rng, 2, 5)
        return {
            "image_size": choice(rng, [s for s in (32, 64, 96, 128, 192, 256, 384, 512) if s % 2 ** levels == 0]),
            "levels": levels,
            "base_width": choice(rng, [4, 8, 16, 24, 32, 48, 64]),
            "upsample": choice(rng, ["transpose", "bilinear"]),
            "num_classes": choice(rng, [1, 2, 4, 21]),
        }

    @classmethod
    def cost(cls, c: dict[str, Any]) -> tuple[float, float]:
        widths = [c["base_width"] * 2 ** i for i in range(c["levels"] + 1)]
        res, cin, macs, params = c["image_size"], 3, 0.0, 0.0
        for w in widths:  # encoder levels, then the bottleneck
            macs += conv_macs(res, cin, w, 3) + conv_macs(res, w, w, 3)
            params += 9 * (cin * w + w * w)
            cin, res = w, res // 2
        res *= 2
        for w1, w2 in zip(widths[-2::-1], widths[:0:-1]):
            res *= 2
            # ConvTranspose 2x2/s2 and the 1x1 conv after Resize both cost res²·w2·w1
            macs += conv_macs(res, w2, w1) + conv_macs(res, 2 * w1, w1, 3) + conv_macs(res, w1, w1, 3)
            params += (4 if c["upsample"] == "transpose" else 1) * w1 * w2 + 9 * (3 * w1 * w1)
        return macs + conv_macs(res, widths[0], c["num_classes"]), params

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 16, "levels": 2, "base_width": 4, "upsample": "transpose", "num_classes": 2}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return UNet(config), (image_input(batch_size, config["image_size"]),)


# ---------------------------------------------------------------------------- RetinaNet-style detector
class Detector(nn.Module):
    """``[B, 3, S, S] -> (scores [B, N, classes], boxes [B, N, 4])`` over all anchors of all levels.

    Backbone: 7x7/s2 stem, max-pool, four stages of ResNet basic blocks (C2..C5 at /4../32). FPN:
    1x1 laterals on C3..C5, top-down nearest 2x Resize + add, 3x3 smoothing; P6 (and P7) by 3x3/s2
    convs. Heads (shared across levels): ``tower`` 3x3 conv + ReLU layers, then a 3x3 conv to
    ``anchors·classes`` (sigmoid) and one to ``anchors·4``.
    """

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        w, f, a = c["widths"], c["fpn_width"], c["anchors"]
        self.stem = nn.Sequential(conv_bn(3, w[0], 7, 2), nn.MaxPool2d(3, 2, 1))
        self.stages, cin = nn.ModuleList(), w[0]
        for i, (width, depth) in enumerate(zip(w, c["depths"])):
            blocks = [ResBlock(cin if j == 0 else width, width, 3, 2 if (j == 0 and i) else 1, 1) for j in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
            cin = width
        self.lateral = nn.ModuleList(nn.Conv2d(width, f, 1) for width in w[1:])
        self.smooth = nn.ModuleList(nn.Conv2d(f, f, 3, padding=1) for _ in w[1:])
        self.extra = nn.ModuleList(nn.Conv2d(w[-1] if i == 0 else f, f, 3, 2, 1) for i in range(c["extra_levels"]))
        self.classes, self.anchors = c["num_classes"], a

        def tower() -> nn.Sequential:
            layers = [m for _ in range(c["tower_depth"]) for m in (nn.Conv2d(f, f, 3, padding=1), nn.ReLU())]
            return nn.Sequential(*layers)

        self.cls_tower, self.box_tower = tower(), tower()
        self.cls_out, self.box_out = nn.Conv2d(f, a * self.classes, 3, padding=1), nn.Conv2d(f, a * 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        laterals = [lat(f) for lat, f in zip(self.lateral, feats[1:])]
        for i in range(len(laterals) - 1, 0, -1):  # top-down: upsample the coarser map and add
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], scale_factor=2.0, mode="nearest")
        levels = [s(p) for s, p in zip(self.smooth, laterals)]
        y = feats[-1]
        for i, conv in enumerate(self.extra):
            y = conv(y if i == 0 else F.relu(y))
            levels.append(y)
        b = levels[0].shape[0]
        scores = [self.cls_out(self.cls_tower(p)).permute(0, 2, 3, 1).reshape(b, -1, self.classes) for p in levels]
        boxes = [self.box_out(self.box_tower(p)).permute(0, 2, 3, 1).reshape(b, -1, 4) for p in levels]
        return torch.sigmoid(torch.cat(scores, dim=1)), torch.cat(boxes, dim=1)


@FAMILIES.register("fpn_detector")
class FPNDetectorFamily(CappedCostFamily):
    """RetinaNet-like detector: ResNet basic-block backbone, FPN P3..P5 (+P6/P7), shared heads."""

    name = "fpn_detector"
    input_kind = "image"
    version = "1"
    description = "RetinaNet-style detector: ResNet backbone, FPN (nearest Resize + add), multi-scale shared heads"
    macs_range = (1e7, 1.5e11)
    max_params = 8e7

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        base = choice(rng, [16, 32, 48, 64])
        return {
            "image_size": choice(rng, [128, 192, 256, 320, 384, 512, 640, 768]),
            "widths": [base, 2 * base, 4 * base, 8 * base],
            "depths": [randint(rng, 1, 3), randint(rng, 1, 4), randint(rng, 1, 6), randint(rng, 1, 3)],
            "fpn_width": choice(rng, [32, 64, 128, 256]),
            "extra_levels": randint(rng, 0, 2),
            "tower_depth": randint(rng, 1, 4),
            "anchors": choice(rng, [1, 3, 9]),
            "num_classes": choice(rng, [1, 20, 80]),
        }

    @classmethod
    def cost(cls, c: dict[str, Any]) -> tuple[float, float]:
        w, f = c["widths"], c["fpn_width"]
        res = c["image_size"] // 2
        macs, params, cin = conv_macs(res, 3, w[0], 7), 147.0 * w[0], w[0]
        res //= 2
        sizes = []
        for i, (width, depth) in enumerate(zip(w, c["depths"])):
            for j in range(depth):
                s = 2 if (j == 0 and i) else 1
                res //= s
                macs += conv_macs(res, cin, width, 3) + conv_macs(res, width, width, 3)
                params += 9 * (cin * width + width * width)
                if s != 1 or cin != width:
                    macs += conv_macs(res, cin, width)
                cin = width
            sizes.append(res)
        macs += sum(conv_macs(r, width, f) + conv_macs(r, f, f, 3) for r, width in zip(sizes[1:], w[1:]))
        params += sum(width * f + 9 * f * f for width in w[1:])
        r = sizes[-1]
        for i in range(c["extra_levels"]):
            r = (r + 1) // 2
            macs += conv_macs(r, w[-1] if i == 0 else f, f, 3)
            sizes.append(r)
        cells = sum(r * r for r in sizes[1:])
        out = c["anchors"] * (c["num_classes"] + 4)
        macs += cells * 9 * f * (2 * c["tower_depth"] * f + out)
        params += 9 * f * (2 * c["tower_depth"] * f + out)
        return macs, params

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 64, "widths": [8, 8, 16, 16], "depths": [1, 1, 1, 1], "fpn_width": 8, "extra_levels": 1,
                "tower_depth": 1, "anchors": 3, "num_classes": 4}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return Detector(config), (image_input(batch_size, config["image_size"]),)


__all__ = ["Detector", "FPNDetectorFamily", "UNet", "UNetFamily"]
