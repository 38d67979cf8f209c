"""Classic CNN image classifiers (ResNet, VGG, AlexNet, SqueezeNet, GoogLeNet), re-sampled the way
the nn-Meter dataset generator samples them.

Each family starts from its reference network (ResNet-18/34/50, VGG-11..19, AlexNet, SqueezeNet
1.0/1.1, GoogLeNet) and re-samples, per stage, the output channels (reference width x a random
multiplier on a 0.1 grid, rounded to a multiple of 8), the kernel size and the depth. Ranges are
chosen so that FLOPs span about two orders of magnitude inside a family (roughly 0.05 to 5 GFLOPs,
multiply-add = 2) while the largest variants export in a few seconds and run in under 100 ms on one
onnxruntime CPU thread.

Inputs are ``Bx3x224x224`` images; classifiers have 1000 classes. Configs hold the derived
per-stage values (channels, depths, kernels...), so :meth:`build` needs nothing but the config;
multipliers that produced them are kept for reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import Branches, conv_bn, head, image_input
from archcast.zoo.sampling import ReferenceFamily, divisible, grid, log_grid, pick, randint

IMAGE_SIZE = 224
# generator version 2 of the families with under 100x latency span in v2: inputs of every multiple of 32
IMAGE_SIZES = (96, 128, 160, 192, 224, 256, 288, 320)
NUM_CLASSES = 1000


# ---------------------------------------------------------------------------- resnet
class ResBlock(nn.Module):
    """ResNet basic (expansion 1: kxk, kxk) or bottleneck (1x1, kxk, 1x1 x expansion) block."""

    def __init__(self, cin: int, width: int, k: int, stride: int, expansion: int) -> None:
        super().__init__()
        cout = width * expansion
        if expansion == 1:
            self.body = nn.Sequential(conv_bn(cin, width, k, stride), conv_bn(width, cout, k, act_name="none"))
        else:
            self.body = nn.Sequential(conv_bn(cin, width, 1), conv_bn(width, width, k, stride),
                                      conv_bn(width, cout, 1, act_name="none"))
        self.shortcut = (conv_bn(cin, cout, 1, stride, act_name="none") if stride != 1 or cin != cout
                         else nn.Identity())
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


_RESNET_WIDTHS = (64, 128, 256, 512)
_RESNET_MAX_DEPTHS = (3, 4, 6, 3)  # ResNet-34/50


@FAMILIES.register("resnet")
class ResNetFamily(ReferenceFamily):
    """Basic or bottleneck (expansion 2/4) blocks; width x0.15..0.9 (log-uniform) with per-stage jitter x0.8..1.2;
    per stage depth 1..3/4/6/3 and kernel 3/5."""

    version = "2"  # + image_size (ReferenceFamily)
    image_sizes = IMAGE_SIZES
    name = "resnet"
    description = "ResNet (basic or bottleneck blocks) with per-stage widths, depths and kernel sizes"
    required_keys = ("block", "stem_channels", "widths", "depths", "kernels", "expansion")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        block = pick(rng, ["basic", "bottleneck"])
        # a global width (FLOPs scale with its square) times nn-Meter-style per-stage jitter
        g = log_grid(rng, 0.15, 0.9)
        mults = [round(g * grid(rng, 0.8, 1.2), 4) for _ in _RESNET_WIDTHS]
        return {
            "block": block,
            "expansion": 1 if block == "basic" else pick(rng, [2, 4]),
            "stem_channels": divisible(64 * g * grid(rng, 0.8, 1.2)),
            "width_mult": g,
            "width_mults": mults,
            "widths": [divisible(w * m) for w, m in zip(_RESNET_WIDTHS, mults)],
            "depths": [randint(rng, 1, d) for d in _RESNET_MAX_DEPTHS],
            "kernels": [pick(rng, [3, 5], p=[0.75, 0.25]) for _ in _RESNET_WIDTHS],
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        c = config["stem_channels"]
        layers = [conv_bn(3, c, 7, 2), nn.MaxPool2d(3, 2, 1)]
        for s, (w, d, k) in enumerate(zip(config["widths"], config["depths"], config["kernels"])):
            for i in range(d):
                layers.append(ResBlock(c, w, k, 2 if (i == 0 and s > 0) else 1, config["expansion"]))
                c = w * config["expansion"]
        layers.append(head(c, NUM_CLASSES))
        return nn.Sequential(*layers), (image_input(batch_size, config.get("image_size", IMAGE_SIZE)),)


# ---------------------------------------------------------------------------- vgg
_VGG_WIDTHS = (64, 128, 256, 512, 512)
_VGG_MAX_CONVS = (2, 2, 4, 4, 4)  # VGG-19


@FAMILIES.register("vgg")
class VGGFamily(ReferenceFamily):
    """Five stages of convs + max-pool; per stage: convs (1..2/2/4/4/4), width, kernel 1/3/5; BN on/off;
    two hidden FC layers of sampled width."""

    version = "2"  # + image_size (ReferenceFamily)
    image_sizes = IMAGE_SIZES
    name = "vgg"
    description = "VGG with per-stage conv counts, widths and kernels, optional BN, sampled FC widths"
    required_keys = ("widths", "convs", "kernels", "batch_norm", "fc_widths")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        # VGG-16 is 31 GFLOPs at full width: widths go from 0.05x to 0.36x (FLOPs scale with width^2).
        g = log_grid(rng, 0.05, 0.36, 0.01)
        mults = [round(g * grid(rng, 0.8, 1.2), 4) for _ in _VGG_WIDTHS]
        return {
            "width_mult": g,
            "width_mults": mults,
            "widths": [divisible(w * m) for w, m in zip(_VGG_WIDTHS, mults)],
            "convs": [randint(rng, 1, n) for n in _VGG_MAX_CONVS],
            "kernels": [pick(rng, [1, 3, 5], p=[0.15, 0.7, 0.15]) for _ in _VGG_WIDTHS],
            "batch_norm": bool(rng.random() < 0.5),
            "fc_widths": [pick(rng, [256, 512, 1024, 2048, 4096]) for _ in range(2)],
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        c, layers = 3, []
        for w, n, k in zip(config["widths"], config["convs"], config["kernels"]):
            for _ in range(n):
                layers.append(conv_bn(c, w, k, bn=config["batch_norm"]))
                c = w
            layers.append(nn.MaxPool2d(2, 2))
        fc1, fc2 = config["fc_widths"]
        side = config.get("image_size", IMAGE_SIZE) // 32  # 7x7 after five 2x2 pools at 224
        layers += [nn.Flatten(), nn.Linear(c * side * side, fc1), nn.ReLU(), nn.Linear(fc1, fc2), nn.ReLU(),
                   nn.Linear(fc2, NUM_CLASSES)]
        return nn.Sequential(*layers), (image_input(batch_size, config.get("image_size", IMAGE_SIZE)),)


# ---------------------------------------------------------------------------- alexnet
_ALEXNET_WIDTHS = (64, 192, 384, 256, 256)


@FAMILIES.register("alexnet")
class AlexNetFamily(ReferenceFamily):
    """AlexNet: five convs with widths x0.1..1.3 (global, log-uniform) x0.7..1.3 (per layer), first kernel
    7/9/11 (stride 4, 55x55 out), later kernels 3/5; two hidden FC layers of 512..4096."""

    name = "alexnet"
    description = "AlexNet with sampled conv widths and kernels and FC widths"
    required_keys = ("widths", "kernels", "fc_widths")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        g = log_grid(rng, 0.1, 1.3)
        mults = [round(g * grid(rng, 0.7, 1.3), 4) for _ in _ALEXNET_WIDTHS]
        return {
            "width_mult": g,
            "width_mults": mults,
            "widths": [divisible(w * m) for w, m in zip(_ALEXNET_WIDTHS, mults)],
            "kernels": [pick(rng, [7, 9, 11])] + [pick(rng, [3, 5], p=[0.6, 0.4]) for _ in range(4)],
            "fc_widths": [pick(rng, [512, 1024, 2048, 3072, 4096]) for _ in range(2)],
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        w, k = config["widths"], config["kernels"]
        pool = lambda: nn.MaxPool2d(3, 2)  # noqa: E731
        features = [nn.Conv2d(3, w[0], k[0], 4, (k[0] - 7) // 2), nn.ReLU(), pool(),  # 224 -> 55 -> 27
                    conv_bn(w[0], w[1], k[1], bn=False), pool()]  # -> 13
        for cin, cout, kk in zip(w[1:4], w[2:5], k[2:5]):
            features.append(conv_bn(cin, cout, kk, bn=False))
        features.append(pool())  # -> 6
        fc1, fc2 = config["fc_widths"]
        classifier = [nn.Flatten(), nn.Linear(w[4] * 36, fc1), nn.ReLU(), nn.Linear(fc1, fc2), nn.ReLU(),
                      nn.Linear(fc2, NUM_CLASSES)]
        return nn.Sequential(*features, *classifier), (image_input(batch_size, IMAGE_SIZE),)


# ---------------------------------------------------------------------------- squeezenet
_FIRE_GROUPS = ((16, 64), (32, 128), (48, 192), (64, 256))  # (squeeze, expand) of the four fire groups


@FAMILIES.register("squeezenet")
class SqueezeNetFamily(ReferenceFamily):
    """SqueezeNet with a 1.0-style (7x7/96 stem, max-pools after fire groups 1 and 3) or 1.1-style
    (3x3/64 stem, pools after groups 1 and 2; exactly SqueezeNet 1.1 at 2 fires per group) layout;
    four groups of 1..3 fires; width x0.2..1.5 (log-uniform) with per-fire squeeze/expand jitter x0.7..1.3; expand
    kernel 3/5."""

    version = "2"  # + image_size (ReferenceFamily)
    image_sizes = IMAGE_SIZES
    name = "squeezenet"
    description = "SqueezeNet 1.0/1.1 with sampled fire counts, squeeze/expand widths and expand kernels"
    required_keys = ("version", "stem_channels", "fires_per_group", "squeeze", "expand", "expand_kernels")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        version = pick(rng, ["1_0", "1_1"])
        g = log_grid(rng, 0.2, 1.5)
        counts = [randint(rng, 1, 3) for _ in _FIRE_GROUPS]
        squeeze, expand = [], []
        for (s, e), n in zip(_FIRE_GROUPS, counts):
            for _ in range(n):
                squeeze.append(divisible(s * g * grid(rng, 0.7, 1.3)))
                expand.append(divisible(e * g * grid(rng, 0.7, 1.3)))
        return {
            "version": version,
            "width_mult": g,
            "stem_channels": divisible((96 if version == "1_0" else 64) * g * grid(rng, 0.7, 1.3)),
            "fires_per_group": counts,
            "squeeze": squeeze,
            "expand": expand,  # each of the 1x1 and kxk branches
            "expand_kernels": [pick(rng, [3, 5], p=[0.7, 0.3]) for _ in squeeze],
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        v1_0 = config["version"] == "1_0"
        c = config["stem_channels"]
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        layers = [nn.Conv2d(3, c, 7 if v1_0 else 3, 2), nn.ReLU(), pool()]
        # 1.0 pools after the 1st and 3rd fire groups, 1.1 after the 1st and 2nd
        pool_after = {0, 2} if v1_0 else {0, 1}
        fire = 0
        for g, n in enumerate(config["fires_per_group"]):
            for _ in range(n):
                s, e, k = config["squeeze"][fire], config["expand"][fire], config["expand_kernels"][fire]
                layers += [conv_bn(c, s, 1, bn=False),
                           Branches(conv_bn(s, e, 1, bn=False), conv_bn(s, e, k, bn=False))]
                c, fire = 2 * e, fire + 1
            if g in pool_after:
                layers.append(pool())
        layers += [conv_bn(c, NUM_CLASSES, 1, bn=False), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        return nn.Sequential(*layers), (image_input(batch_size, config.get("image_size", IMAGE_SIZE)),)


# ---------------------------------------------------------------------------- googlenet
# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of GoogLeNet's inception blocks, per stage
_INCEPTION = (
    ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),
    ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
     (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)),
    ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),
)


@FAMILIES.register("googlenet")
class GoogLeNetFamily(ReferenceFamily):
    """GoogLeNet: stem, then 3 stages of 1..2 / 1..5 / 1..2 inception blocks (the first blocks of the
    reference table); per block a width multiplier (global 0.15..1.2 log-uniform x 0.8..1.2) with per-branch
    jitter, and kernels 3/5 for the two middle branches. BN after every conv."""

    version = "2"  # + image_size (ReferenceFamily)
    image_sizes = IMAGE_SIZES
    name = "googlenet"
    description = "GoogLeNet (inception blocks) with sampled block counts, branch widths and kernels"
    required_keys = ("stem_channels", "blocks_per_stage", "branches", "kernels")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        g = log_grid(rng, 0.15, 1.2)
        counts = [randint(rng, 1, len(stage)) for stage in _INCEPTION]
        branches, kernels = [], []
        for stage, n in zip(_INCEPTION, counts):
            for ref in stage[:n]:
                m = g * grid(rng, 0.8, 1.2)
                branches.append([divisible(c * m * grid(rng, 0.7, 1.3)) for c in ref])
                kernels.append([pick(rng, [3, 5], p=[0.6, 0.4]), pick(rng, [3, 5], p=[0.4, 0.6])])
        return {
            "width_mult": g,
            "stem_channels": [divisible(64 * g), divisible(64 * g), divisible(192 * g)],
            "blocks_per_stage": counts,
            "branches": branches,  # per block: 1x1, kxk reduce, kxk, kxk reduce, kxk, pool proj
            "kernels": kernels,  # per block: kernel of branch 2 and of branch 3
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        s1, s2, s3 = config["stem_channels"]
        layers = [conv_bn(3, s1, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True), conv_bn(s1, s2, 1),
                  conv_bn(s2, s3, 3), nn.MaxPool2d(3, 2, ceil_mode=True)]
        c, block = s3, 0
        for stage, n in enumerate(config["blocks_per_stage"]):
            if stage > 0:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            for _ in range(n):
                c1, r2, c2, r3, c3, cp = config["branches"][block]
                k2, k3 = config["kernels"][block]
                layers.append(Branches(
                    conv_bn(c, c1, 1),
                    nn.Sequential(conv_bn(c, r2, 1), conv_bn(r2, c2, k2)),
                    nn.Sequential(conv_bn(c, r3, 1), conv_bn(r3, c3, k3)),
                    nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), conv_bn(c, cp, 1)),
                ))
                c, block = c1 + c2 + c3 + cp, block + 1
        layers.append(head(c, NUM_CLASSES))
        return nn.Sequential(*layers), (image_input(batch_size, config.get("image_size", IMAGE_SIZE)),)


__all__ = ["AlexNetFamily", "GoogLeNetFamily", "ResBlock", "ResNetFamily", "SqueezeNetFamily", "VGGFamily"]
