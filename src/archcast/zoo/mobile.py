"""Mobile CNN image classifiers built from MBConv inverted residuals (EfficientNet, MobileNetV2,
MobileNetV3, MnasNet), re-sampled the way the nn-Meter dataset generator samples them.

Each family starts from its reference network (EfficientNet-B0, MobileNetV2, MobileNetV3-Large,
MnasNet-A1) and re-samples, per stage, the output channels, kernel size, depth, expansion ratio and
squeeze-and-excitation on/off. FLOPs span about two orders of magnitude inside a family. Inputs are
``Bx3x224x224`` images; classifiers have 1000 classes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import SqueezeExcite, conv_bn, head, image_input
from archcast.zoo.sampling import ReferenceFamily, divisible, grid, log_grid, pick, randint

IMAGE_SIZE = 224
IMAGE_SIZES = (96, 128, 160, 192, 224, 256, 288, 320)  # generator version 2 (ReferenceFamily)
NUM_CLASSES = 1000


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project (+ x)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: float, *, act_name: str,
                 se_squeeze: int = 0, se_act: str = "relu", se_gate: str = "sigmoid") -> None:
        super().__init__()
        mid = divisible(cin * expand) if expand != 1 else cin
        self.expand = conv_bn(cin, mid, 1, act_name=act_name) if mid != cin else nn.Identity()
        self.depthwise = conv_bn(mid, mid, k, stride, groups=mid, act_name=act_name)
        self.se = SqueezeExcite(mid, se_squeeze, se_act, se_gate) if se_squeeze else nn.Identity()
        self.project = conv_bn(mid, cout, 1, act_name="none")
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(self.se(self.depthwise(self.expand(x))))
        return x + h if self.residual else h


def _mb_network(config: dict[str, Any], *, act_name: str, se_act: str, se_gate: str, se_of_input: bool,
                head_hidden: int = 0, head_act: str = "relu") -> Any:
    """Stem conv3x3/s2 -> MBConv stages -> 1x1 head conv -> classifier, from the shared MBConv config
    keys (``stem_channels``, per-stage ``channels/depths/strides/kernels/expansions/se``,
    ``head_channels``; optional per-stage ``acts``). SE squeeze width: 1/4 of the block input (EfficientNet) when
    ``se_of_input``, else 1/4 of the expanded width (MobileNetV3, MnasNet)."""
    c = config["stem_channels"]
    stem_act = config.get("stem_act", act_name)
    layers = [conv_bn(3, c, 3, 2, act_name=stem_act)]
    acts = config.get("acts") or [act_name] * len(config["channels"])
    for cout, d, s, k, e, se, a in zip(config["channels"], config["depths"], config["strides"], config["kernels"],
                                       config["expansions"], config["se"], acts):
        for i in range(d):
            mid = divisible(c * e) if e != 1 else c
            squeeze = (max(1, int(c * 0.25)) if se_of_input else divisible(mid / 4)) if se else 0
            layers.append(MBConv(c, cout, k, s if i == 0 else 1, e, act_name=a, se_squeeze=squeeze,
                                   se_act=se_act, se_gate=se_gate))
            c = cout
    layers.append(conv_bn(c, config["head_channels"], 1, act_name=head_act if head_hidden else act_name))
    layers.append(head(config["head_channels"], NUM_CLASSES, head_hidden, head_act))
    return nn.Sequential(*layers)


# (expansion, kernel, channels, depth, stride) of EfficientNet-B0's seven stages
_EFFNET_B0 = ((1, 3, 16, 1, 1), (6, 3, 24, 2, 2), (6, 5, 40, 2, 2), (6, 3, 80, 3, 2), (6, 5, 112, 3, 1),
              (6, 5, 192, 4, 2), (6, 3, 320, 1, 1))
_MB_KEYS = ("stem_channels", "channels", "depths", "strides", "kernels", "expansions", "se", "head_channels")


@FAMILIES.register("efficientnet")
class EfficientNetFamily(ReferenceFamily):
    """EfficientNet-B0 scaled by width (0.25..2.8) and depth (0.2..1.8) multipliers (log-uniform),
    per-stage channel jitter (x0.8..1.2), kernels 3/5, expansion 3/4/6, SE on for ~80 % of stages;
    swish."""

    version = "2"  # + image_size (ReferenceFamily)
    image_sizes = IMAGE_SIZES
    name = "efficientnet"
    description = "EfficientNet (MBConv + SE, swish) with width/depth multipliers, kernels 3/5, expansions"
    required_keys = _MB_KEYS

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        w, d = log_grid(rng, 0.25, 2.8), log_grid(rng, 0.2, 1.8, 0.1)
        jitter = [grid(rng, 0.8, 1.2) for _ in _EFFNET_B0]
        return {
            "width_mult": w,
            "depth_mult": d,
            "stem_channels": divisible(32 * w),
            "channels": [divisible(c * w * j) for (_, _, c, _, _), j in zip(_EFFNET_B0, jitter)],
            "depths": [max(1, math.ceil(n * d)) for (_, _, _, n, _) in _EFFNET_B0],
            "strides": [s for (*_, s) in _EFFNET_B0],
            "kernels": [pick(rng, [3, 5]) for _ in _EFFNET_B0],
            "expansions": [1] + [pick(rng, [3, 4, 6], p=[0.25, 0.25, 0.5]) for _ in _EFFNET_B0[1:]],
            "se": [bool(rng.random() < 0.8) for _ in _EFFNET_B0],
            "head_channels": divisible(1280 * max(1.0, w)),
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        return _mb_network(config, act_name="swish", se_act="swish", se_gate="sigmoid", se_of_input=True), \
            (image_input(batch_size, config.get("image_size", IMAGE_SIZE)),)


# (expansion, channels, depth, stride) of MobileNetV2's seven stages
_MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


@FAMILIES.register("mobilenetv2")
class MobileNetV2Family(ReferenceFamily):
    """MobileNetV2: width multiplier (0.25..3.5, log-uniform) x per-stage channel jitter (x0.7..1.3),
    depth per stage (1..n+1), expansion 3..6, kernels 3/5/7; ReLU6; no SE."""

    version = "2"  # + image_size (ReferenceFamily)
    image_sizes = IMAGE_SIZES
    name = "mobilenetv2"
    description = "MobileNetV2 (inverted residuals, ReLU6) with width mult, expansions 3-6, depths, kernels"
    required_keys = _MB_KEYS

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        w = log_grid(rng, 0.25, 3.5)
        jitter = [grid(rng, 0.7, 1.3) for _ in _MBV2]
        return {
            "width_mult": w,
            "stem_channels": divisible(32 * w),
            "channels": [divisible(c * w * j) for (_, c, _, _), j in zip(_MBV2, jitter)],
            "depths": [1 if i in (0, 6) else randint(rng, 1, n + 1) for i, (_, _, n, _) in enumerate(_MBV2)],
            "strides": [s for (*_, s) in _MBV2],
            "kernels": [pick(rng, [3, 5, 7], p=[0.6, 0.3, 0.1]) for _ in _MBV2],
            "expansions": [1] + [randint(rng, 3, 6) for _ in _MBV2[1:]],
            "se": [False] * len(_MBV2),
            "head_channels": divisible(1280 * max(1.0, w)),
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        return _mb_network(config, act_name="relu6", se_act="relu", se_gate="sigmoid", se_of_input=False), \
            (image_input(batch_size, config.get("image_size", IMAGE_SIZE)),)


# (kernel, expansion ratio, channels, depth, stride, SE, activation) of MobileNetV3-Large, as stages
_MBV3_LARGE = ((3, 1.0, 16, 1, 1, False, "relu"), (3, 4.0, 24, 2, 2, False, "relu"),
               (5, 3.0, 40, 3, 2, True, "relu"), (3, 3.0, 80, 4, 2, False, "hswish"),
               (3, 6.0, 112, 2, 1, True, "hswish"), (5, 6.0, 160, 3, 2, True, "hswish"))


@FAMILIES.register("mobilenetv3")
class MobileNetV3Family(ReferenceFamily):
    """MobileNetV3-Large: per-stage channels (x0.25..3.0 log-uniform global x0.8..1.2), depth (1..n+1), expansion
    (reference ratio x0.8..1.8, nn-Meter's ``es``), kernel 3/5, SE on/off; ReLU early, hardswish
    late; SE gate hardsigmoid; 1x1 head conv + 1280-wide hardswish FC."""

    version = "2"  # + image_size (ReferenceFamily)
    image_sizes = IMAGE_SIZES
    name = "mobilenetv3"
    description = "MobileNetV3-Large (hardswish, SE with hardsigmoid) with sampled widths, depths, kernels 3/5"
    required_keys = _MB_KEYS + ("acts",)

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        w = log_grid(rng, 0.25, 3.0)
        jitter = [grid(rng, 0.8, 1.2) for _ in _MBV3_LARGE]
        return {
            "width_mult": w,
            "stem_channels": divisible(16 * w),
            "channels": [divisible(c * w * j) for (_, _, c, *_), j in zip(_MBV3_LARGE, jitter)],
            "depths": [1 if i == 0 else randint(rng, 1, n + 1) for i, (_, _, _, n, *_) in enumerate(_MBV3_LARGE)],
            "strides": [st[4] for st in _MBV3_LARGE],
            "kernels": [pick(rng, [3, 5]) for _ in _MBV3_LARGE],
            "expansions": [1] + [round(st[1] * grid(rng, 0.8, 1.8), 4) for st in _MBV3_LARGE[1:]],
            "se": [bool(rng.random() < 0.5) for _ in _MBV3_LARGE],
            "acts": [st[6] for st in _MBV3_LARGE],
            "head_channels": divisible(960 * w * grid(rng, 0.8, 1.2)),
            "head_hidden": divisible(1280 * max(0.5, w)),
            "stem_act": "hswish",
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        module = _mb_network(config, act_name="relu", se_act="relu", se_gate="hsigmoid", se_of_input=False,
                             head_hidden=config.get("head_hidden", 1280), head_act="hswish")
        return module, (image_input(batch_size, config.get("image_size", IMAGE_SIZE)),)


# (expansion, kernel, channels, depth, stride, SE) of MnasNet-A1 after its separable-conv stage
_MNASNET_A1 = ((6, 3, 24, 2, 2, False), (3, 5, 40, 3, 2, True), (6, 3, 80, 4, 2, False), (6, 3, 112, 2, 1, True),
               (6, 5, 160, 3, 2, True), (6, 3, 320, 1, 1, False))


@FAMILIES.register("mnasnet")
class MnasNetFamily(ReferenceFamily):
    """MnasNet-A1: stem conv -> separable conv (dw3x3 + pw) -> six MBConv stages; per stage channels
    (x0.25..3.0 log-uniform global x0.8..1.2), depth (1..n+1), expansion 3/6, kernel 3/5, SE on/off; ReLU."""

    version = "2"  # + image_size (ReferenceFamily)
    image_sizes = IMAGE_SIZES
    name = "mnasnet"
    description = "MnasNet-A1 (separable-conv stem, MBConv, optional SE, ReLU) with sampled stages"
    required_keys = _MB_KEYS

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        w = log_grid(rng, 0.25, 3.0)
        jitter = [grid(rng, 0.8, 1.2) for _ in range(len(_MNASNET_A1) + 1)]
        return {
            "width_mult": w,
            "stem_channels": divisible(32 * w),
            # stage 0 is the separable conv: depthwise (expansion 1) without SE, no residual
            "channels": [divisible(16 * w * jitter[0])]
                        + [divisible(c * w * j) for (_, _, c, *_), j in zip(_MNASNET_A1, jitter[1:])],
            "depths": [1] + [randint(rng, 1, n + 1) for (_, _, _, n, _, _) in _MNASNET_A1],
            "strides": [1] + [st[4] for st in _MNASNET_A1],
            "kernels": [3] + [pick(rng, [3, 5]) for _ in _MNASNET_A1],
            "expansions": [1] + [pick(rng, [3, 6]) for _ in _MNASNET_A1],
            "se": [False] + [bool(rng.random() < 0.5) for _ in _MNASNET_A1],
            "head_channels": divisible(1280 * max(1.0, w)),
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        return _mb_network(config, act_name="relu", se_act="relu", se_gate="sigmoid", se_of_input=False), \
            (image_input(batch_size, config.get("image_size", IMAGE_SIZE)),)


__all__ = ["EfficientNetFamily", "MBConv", "MnasNetFamily", "MobileNetV2Family", "MobileNetV3Family"]
