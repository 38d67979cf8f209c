"""The NNLQP "classic" model families: ten CNN families whose variants are sampled the way the
nn-Meter dataset generator samples them.

Each family starts from its reference network (ResNet-18/34/50, VGG-11..19, EfficientNet-B0,
MobileNetV2, MobileNetV3-Large, MnasNet-A1, AlexNet, SqueezeNet 1.0/1.1, GoogLeNet, NAS-Bench-201)
and re-samples, per stage, the output channels (reference width x a random multiplier on a 0.1
grid, rounded to a multiple of 8), the kernel size, the depth, the expansion ratio and squeeze-and-
excitation on/off where the family has them. Ranges are chosen so that FLOPs span about two orders
of magnitude inside a family (roughly 0.05 to 5 GFLOPs, multiply-add = 2; nb201 from 0.004) while
the largest variants export in a few seconds and run in under 100 ms on one onnxruntime CPU thread.

Inputs are ``1x3x224x224`` images (``1x3x32x32`` for ``nb201``); classifiers have 1000 classes
(10 for ``nb201``). Configs hold the derived per-stage values (channels, depths, kernels...), so
:meth:`build` needs nothing but the config; multipliers that produced them are kept for reference.

torch is imported only when a module is built: sampling configs and listing families stay light.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.zoo.base import FAMILIES, Family

IMAGE_SIZE = 224
NUM_CLASSES = 1000


# ---------------------------------------------------------------------------- sampling helpers
def _pick(rng: np.random.Generator, options: Sequence[Any], p: Sequence[float] | None = None) -> Any:
    """One element of ``options`` as the plain Python value (numpy scalars are not JSON)."""
    return options[int(rng.choice(len(options), p=p))]


def _grid(rng: np.random.Generator, lo: float, hi: float, step: float = 0.1) -> float:
    """A value uniform on the grid ``lo, lo+step, ..., hi`` (nn-Meter's ``start/end/step``)."""
    n = int(round((hi - lo) / step))
    return round(lo + step * int(rng.integers(0, n + 1)), 4)


def _log_grid(rng: np.random.Generator, lo: float, hi: float, step: float = 0.05) -> float:
    """A log-uniform value in ``[lo, hi]`` rounded to the ``step`` grid: every octave of a global
    width or depth multiplier is equally likely, so latency spreads evenly on a log scale instead of
    piling up in the middle of the range."""
    v = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return round(min(hi, max(lo, round(v / step) * step)), 4)


def _int(rng: np.random.Generator, lo: int, hi: int) -> int:
    """An int uniform in ``[lo, hi]`` (both included)."""
    return int(rng.integers(lo, hi + 1))


def _divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to a multiple of ``divisor``, at least ``divisor`` and never below 90 % of
    ``value`` (the MobileNet rule, so hardware-friendly channel counts come out)."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


def _require(config: dict[str, Any], family: str, keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in config]
    if missing:
        raise InvalidInputError(
            f"{family} config lacks {', '.join(map(repr, missing))}; got keys {sorted(config)}"
        )


def _image(batch_size: int, size: int = IMAGE_SIZE) -> tuple[Any, ...]:
    import torch

    gen = torch.Generator().manual_seed(0)
    return (torch.randn(batch_size, 3, size, size, generator=gen),)


# ---------------------------------------------------------------------------- torch building blocks
@functools.cache
def _nn() -> SimpleNamespace:
    """The torch building blocks, defined on first use so that importing this module (to register
    the families or sample configs) does not import torch."""
    import torch
    from torch import nn

    def act(name: str) -> nn.Module:
        table = {"relu": nn.ReLU, "relu6": nn.ReLU6, "swish": nn.SiLU, "hswish": nn.Hardswish,
                 "sigmoid": nn.Sigmoid, "hsigmoid": nn.Hardsigmoid}
        return table[name]() if name != "none" else nn.Identity()

    def conv_bn(cin: int, cout: int, k: int, stride: int = 1, *, groups: int = 1, act_name: str = "relu",
                bn: bool = True) -> nn.Sequential:
        """Conv(k, 'same' padding) -> BN -> activation; without BN the conv has a bias."""
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(act(act_name))
        return nn.Sequential(*layers)

    def head(cin: int, classes: int, hidden: int = 0, hidden_act: str = "relu") -> nn.Sequential:
        """Global average pool -> flatten -> [Linear -> act] -> Linear."""
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if hidden:
            layers += [nn.Linear(cin, hidden), act(hidden_act)]
            cin = hidden
        layers.append(nn.Linear(cin, classes))
        return nn.Sequential(*layers)

    class SqueezeExcite(nn.Module):
        """x * gate(conv1x1(act(conv1x1(avgpool(x)))))"""

        def __init__(self, c: int, squeeze: int, act_name: str, gate: str) -> None:
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.reduce = nn.Conv2d(c, squeeze, 1)
            self.act = act(act_name)
            self.expand = nn.Conv2d(squeeze, c, 1)
            self.gate = act(gate)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))

    class MBConv(nn.Module):
        """Inverted residual: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project (+ x)."""

        def __init__(self, cin: int, cout: int, k: int, stride: int, expand: float, *, act_name: str,
                     se_squeeze: int = 0, se_act: str = "relu", se_gate: str = "sigmoid") -> None:
            super().__init__()
            mid = _divisible(cin * expand) if expand != 1 else cin
            self.expand = conv_bn(cin, mid, 1, act_name=act_name) if mid != cin else nn.Identity()
            self.depthwise = conv_bn(mid, mid, k, stride, groups=mid, act_name=act_name)
            self.se = SqueezeExcite(mid, se_squeeze, se_act, se_gate) if se_squeeze else nn.Identity()
            self.project = conv_bn(mid, cout, 1, act_name="none")
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.project(self.se(self.depthwise(self.expand(x))))
            return x + h if self.residual else h

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

    class Branches(nn.Module):
        """Runs parallel branches on one input and concatenates them on channels (fire, inception)."""

        def __init__(self, *branches: nn.Module) -> None:
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([b(x) for b in self.branches], dim=1)

    class NB201Cell(nn.Module):
        """NAS-Bench-201 cell: node j = sum over i < j of op_(j,i)(node i); output = node 3.

        ``none`` edges are left out (they add zero); a node no live edge reaches is absent, and a
        cell whose output is absent returns ``x * 0`` as NAS-Bench-201's Zero op does.
        """

        def __init__(self, c: int, ops: list[list[str]]) -> None:
            super().__init__()
            self.edges = nn.ModuleDict()
            for j, row in enumerate(ops, start=1):
                for i, op in enumerate(row):
                    if op == "none":
                        continue
                    if op == "skip_connect":
                        mod: nn.Module = nn.Identity()
                    elif op == "avg_pool_3x3":
                        mod = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
                    else:  # nor_conv_kxk = ReLU -> Conv -> BN
                        k = 3 if op == "nor_conv_3x3" else 1
                        mod = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, 1, k // 2, bias=False), nn.BatchNorm2d(c))
                    self.edges[f"{j}_{i}"] = mod

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            nodes: list[torch.Tensor | None] = [x]
            for j in range(1, 4):
                terms = [self.edges[f"{j}_{i}"](nodes[i]) for i in range(j)
                         if f"{j}_{i}" in self.edges and nodes[i] is not None]
                total = None
                for t in terms:
                    total = t if total is None else total + t
                nodes.append(total)
            return nodes[3] if nodes[3] is not None else x * 0.0

    class NB201Reduction(nn.Module):
        """NAS-Bench-201's residual reduction block: ReLUConvBN(3x3, s2) -> ReLUConvBN(3x3) plus
        AvgPool(2, s2) -> Conv1x1 on the shortcut."""

        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv_a = nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout))
            self.conv_b = nn.Sequential(nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv_b(self.conv_a(x)) + self.shortcut(x)

    return SimpleNamespace(torch=torch, nn=nn, act=act, conv_bn=conv_bn, head=head, SqueezeExcite=SqueezeExcite,
                           MBConv=MBConv, ResBlock=ResBlock, Branches=Branches, NB201Cell=NB201Cell,
                           NB201Reduction=NB201Reduction)


class _ClassicFamily(Family):
    """Shared parts: image input, config key check, batch-1 224x224 example input."""

    input_kind = "image"
    version = "1"
    _keys: tuple[str, ...] = ()

    def _check(self, config: dict[str, Any]) -> None:
        _require(config, self.name, self._keys)


# ---------------------------------------------------------------------------- resnet
_RESNET_WIDTHS = (64, 128, 256, 512)
_RESNET_MAX_DEPTHS = (3, 4, 6, 3)  # ResNet-34/50


@FAMILIES.register("resnet")
class ResNetFamily(_ClassicFamily):
    """Basic or bottleneck (expansion 2/4) blocks; width x0.15..0.9 (log-uniform) with per-stage jitter x0.8..1.2;
    per stage depth 1..3/4/6/3 and kernel 3/5."""

    name = "resnet"
    description = "ResNet (basic or bottleneck blocks) with per-stage widths, depths and kernel sizes"
    _keys = ("block", "stem_channels", "widths", "depths", "kernels", "expansion")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        block = _pick(rng, ["basic", "bottleneck"])
        # a global width (FLOPs scale with its square) times nn-Meter-style per-stage jitter
        g = _log_grid(rng, 0.15, 0.9)
        mults = [round(g * _grid(rng, 0.8, 1.2), 4) for _ in _RESNET_WIDTHS]
        return {
            "block": block,
            "expansion": 1 if block == "basic" else _pick(rng, [2, 4]),
            "stem_channels": _divisible(64 * g * _grid(rng, 0.8, 1.2)),
            "width_mult": g,
            "width_mults": mults,
            "widths": [_divisible(w * m) for w, m in zip(_RESNET_WIDTHS, mults)],
            "depths": [_int(rng, 1, d) for d in _RESNET_MAX_DEPTHS],
            "kernels": [_pick(rng, [3, 5], p=[0.75, 0.25]) for _ in _RESNET_WIDTHS],
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        b = _nn()
        c = config["stem_channels"]
        layers = [b.conv_bn(3, c, 7, 2), b.nn.MaxPool2d(3, 2, 1)]
        for s, (w, d, k) in enumerate(zip(config["widths"], config["depths"], config["kernels"])):
            for i in range(d):
                layers.append(b.ResBlock(c, w, k, 2 if (i == 0 and s > 0) else 1, config["expansion"]))
                c = w * config["expansion"]
        layers.append(b.head(c, NUM_CLASSES))
        return b.nn.Sequential(*layers), _image(batch_size)


# ---------------------------------------------------------------------------- vgg
_VGG_WIDTHS = (64, 128, 256, 512, 512)
_VGG_MAX_CONVS = (2, 2, 4, 4, 4)  # VGG-19


@FAMILIES.register("vgg")
class VGGFamily(_ClassicFamily):
    """Five stages of convs + max-pool; per stage: convs (1..2/2/4/4/4), width, kernel 1/3/5; BN on/off;
    two hidden FC layers of sampled width."""

    name = "vgg"
    description = "VGG with per-stage conv counts, widths and kernels, optional BN, sampled FC widths"
    _keys = ("widths", "convs", "kernels", "batch_norm", "fc_widths")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        # VGG-16 is 31 GFLOPs at full width: widths go from 0.05x to 0.36x (FLOPs scale with width^2).
        g = _log_grid(rng, 0.05, 0.36, 0.01)
        mults = [round(g * _grid(rng, 0.8, 1.2), 4) for _ in _VGG_WIDTHS]
        return {
            "width_mult": g,
            "width_mults": mults,
            "widths": [_divisible(w * m) for w, m in zip(_VGG_WIDTHS, mults)],
            "convs": [_int(rng, 1, n) for n in _VGG_MAX_CONVS],
            "kernels": [_pick(rng, [1, 3, 5], p=[0.15, 0.7, 0.15]) for _ in _VGG_WIDTHS],
            "batch_norm": bool(rng.random() < 0.5),
            "fc_widths": [_pick(rng, [256, 512, 1024, 2048, 4096]) for _ in range(2)],
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        b = _nn()
        nn = b.nn
        c, layers = 3, []
        for w, n, k in zip(config["widths"], config["convs"], config["kernels"]):
            for _ in range(n):
                layers.append(b.conv_bn(c, w, k, bn=config["batch_norm"]))
                c = w
            layers.append(nn.MaxPool2d(2, 2))
        fc1, fc2 = config["fc_widths"]
        side = IMAGE_SIZE // 32  # 7x7 after five 2x2 pools
        layers += [nn.Flatten(), nn.Linear(c * side * side, fc1), nn.ReLU(), nn.Linear(fc1, fc2), nn.ReLU(),
                   nn.Linear(fc2, NUM_CLASSES)]
        return nn.Sequential(*layers), _image(batch_size)


# ---------------------------------------------------------------------------- MBConv families
def _mb_network(config: dict[str, Any], *, act_name: str, se_act: str, se_gate: str, se_of_input: bool,
                head_hidden: int = 0, head_act: str = "relu") -> Any:
    """Stem conv3x3/s2 -> MBConv stages -> 1x1 head conv -> classifier, from the shared MBConv config
    keys (``stem_channels``, per-stage ``channels/depths/strides/kernels/expansions/se``,
    ``head_channels``; optional per-stage ``acts``). SE squeeze width: 1/4 of the block input (EfficientNet) when
    ``se_of_input``, else 1/4 of the expanded width (MobileNetV3, MnasNet)."""
    b = _nn()
    c = config["stem_channels"]
    stem_act = config.get("stem_act", act_name)
    layers = [b.conv_bn(3, c, 3, 2, act_name=stem_act)]
    acts = config.get("acts") or [act_name] * len(config["channels"])
    for cout, d, s, k, e, se, a in zip(config["channels"], config["depths"], config["strides"], config["kernels"],
                                       config["expansions"], config["se"], acts):
        for i in range(d):
            mid = _divisible(c * e) if e != 1 else c
            squeeze = (max(1, int(c * 0.25)) if se_of_input else _divisible(mid / 4)) if se else 0
            layers.append(b.MBConv(c, cout, k, s if i == 0 else 1, e, act_name=a, se_squeeze=squeeze,
                                   se_act=se_act, se_gate=se_gate))
            c = cout
    layers.append(b.conv_bn(c, config["head_channels"], 1, act_name=head_act if head_hidden else act_name))
    layers.append(b.head(config["head_channels"], NUM_CLASSES, head_hidden, head_act))
    return b.nn.Sequential(*layers)


# (expansion, kernel, channels, depth, stride) of EfficientNet-B0's seven stages
_EFFNET_B0 = ((1, 3, 16, 1, 1), (6, 3, 24, 2, 2), (6, 5, 40, 2, 2), (6, 3, 80, 3, 2), (6, 5, 112, 3, 1),
              (6, 5, 192, 4, 2), (6, 3, 320, 1, 1))
_MB_KEYS = ("stem_channels", "channels", "depths", "strides", "kernels", "expansions", "se", "head_channels")


@FAMILIES.register("efficientnet")
class EfficientNetFamily(_ClassicFamily):
    """EfficientNet-B0 scaled by width (0.25..2.8) and depth (0.2..1.8) multipliers (log-uniform),
    per-stage channel jitter (x0.8..1.2), kernels 3/5, expansion 3/4/6, SE on for ~80 % of stages;
    swish."""

    name = "efficientnet"
    description = "EfficientNet (MBConv + SE, swish) with width/depth multipliers, kernels 3/5, expansions"
    _keys = _MB_KEYS

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        w, d = _log_grid(rng, 0.25, 2.8), _log_grid(rng, 0.2, 1.8, 0.1)
        jitter = [_grid(rng, 0.8, 1.2) for _ in _EFFNET_B0]
        return {
            "width_mult": w,
            "depth_mult": d,
            "stem_channels": _divisible(32 * w),
            "channels": [_divisible(c * w * j) for (_, _, c, _, _), j in zip(_EFFNET_B0, jitter)],
            "depths": [max(1, math.ceil(n * d)) for (_, _, _, n, _) in _EFFNET_B0],
            "strides": [s for (*_, s) in _EFFNET_B0],
            "kernels": [_pick(rng, [3, 5]) for _ in _EFFNET_B0],
            "expansions": [1] + [_pick(rng, [3, 4, 6], p=[0.25, 0.25, 0.5]) for _ in _EFFNET_B0[1:]],
            "se": [bool(rng.random() < 0.8) for _ in _EFFNET_B0],
            "head_channels": _divisible(1280 * max(1.0, w)),
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        return _mb_network(config, act_name="swish", se_act="swish", se_gate="sigmoid", se_of_input=True), \
            _image(batch_size)


# (expansion, channels, depth, stride) of MobileNetV2's seven stages
_MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


@FAMILIES.register("mobilenetv2")
class MobileNetV2Family(_ClassicFamily):
    """MobileNetV2: width multiplier (0.25..3.5, log-uniform) x per-stage channel jitter (x0.7..1.3),
    depth per stage (1..n+1), expansion 3..6, kernels 3/5/7; ReLU6; no SE."""

    name = "mobilenetv2"
    description = "MobileNetV2 (inverted residuals, ReLU6) with width mult, expansions 3-6, depths, kernels"
    _keys = _MB_KEYS

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        w = _log_grid(rng, 0.25, 3.5)
        jitter = [_grid(rng, 0.7, 1.3) for _ in _MBV2]
        return {
            "width_mult": w,
            "stem_channels": _divisible(32 * w),
            "channels": [_divisible(c * w * j) for (_, c, _, _), j in zip(_MBV2, jitter)],
            "depths": [1 if i in (0, 6) else _int(rng, 1, n + 1) for i, (_, _, n, _) in enumerate(_MBV2)],
            "strides": [s for (*_, s) in _MBV2],
            "kernels": [_pick(rng, [3, 5, 7], p=[0.6, 0.3, 0.1]) for _ in _MBV2],
            "expansions": [1] + [_int(rng, 3, 6) for _ in _MBV2[1:]],
            "se": [False] * len(_MBV2),
            "head_channels": _divisible(1280 * max(1.0, w)),
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        return _mb_network(config, act_name="relu6", se_act="relu", se_gate="sigmoid", se_of_input=False), \
            _image(batch_size)


# (kernel, expansion ratio, channels, depth, stride, SE, activation) of MobileNetV3-Large, as stages
_MBV3_LARGE = ((3, 1.0, 16, 1, 1, False, "relu"), (3, 4.0, 24, 2, 2, False, "relu"),
               (5, 3.0, 40, 3, 2, True, "relu"), (3, 3.0, 80, 4, 2, False, "hswish"),
               (3, 6.0, 112, 2, 1, True, "hswish"), (5, 6.0, 160, 3, 2, True, "hswish"))


@FAMILIES.register("mobilenetv3")
class MobileNetV3Family(_ClassicFamily):
    """MobileNetV3-Large: per-stage channels (x0.25..3.0 log-uniform global x0.8..1.2), depth (1..n+1), expansion
    (reference ratio x0.8..1.8, nn-Meter's ``es``), kernel 3/5, SE on/off; ReLU early, hardswish
    late; SE gate hardsigmoid; 1x1 head conv + 1280-wide hardswish FC."""

    name = "mobilenetv3"
    description = "MobileNetV3-Large (hardswish, SE with hardsigmoid) with sampled widths, depths, kernels 3/5"
    _keys = _MB_KEYS + ("acts",)

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        w = _log_grid(rng, 0.25, 3.0)
        jitter = [_grid(rng, 0.8, 1.2) for _ in _MBV3_LARGE]
        return {
            "width_mult": w,
            "stem_channels": _divisible(16 * w),
            "channels": [_divisible(c * w * j) for (_, _, c, *_), j in zip(_MBV3_LARGE, jitter)],
            "depths": [1 if i == 0 else _int(rng, 1, n + 1) for i, (_, _, _, n, *_) in enumerate(_MBV3_LARGE)],
            "strides": [st[4] for st in _MBV3_LARGE],
            "kernels": [_pick(rng, [3, 5]) for _ in _MBV3_LARGE],
            "expansions": [1] + [round(st[1] * _grid(rng, 0.8, 1.8), 4) for st in _MBV3_LARGE[1:]],
            "se": [bool(rng.random() < 0.5) for _ in _MBV3_LARGE],
            "acts": [st[6] for st in _MBV3_LARGE],
            "head_channels": _divisible(960 * w * _grid(rng, 0.8, 1.2)),
            "head_hidden": _divisible(1280 * max(0.5, w)),
            "stem_act": "hswish",
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        module = _mb_network(config, act_name="relu", se_act="relu", se_gate="hsigmoid", se_of_input=False,
                             head_hidden=config.get("head_hidden", 1280), head_act="hswish")
        return module, _image(batch_size)


# (expansion, kernel, channels, depth, stride, SE) of MnasNet-A1 after its separable-conv stage
_MNASNET_A1 = ((6, 3, 24, 2, 2, False), (3, 5, 40, 3, 2, True), (6, 3, 80, 4, 2, False), (6, 3, 112, 2, 1, True),
               (6, 5, 160, 3, 2, True), (6, 3, 320, 1, 1, False))


@FAMILIES.register("mnasnet")
class MnasNetFamily(_ClassicFamily):
    """MnasNet-A1: stem conv -> separable conv (dw3x3 + pw) -> six MBConv stages; per stage channels
    (x0.25..3.0 log-uniform global x0.8..1.2), depth (1..n+1), expansion 3/6, kernel 3/5, SE on/off; ReLU."""

    name = "mnasnet"
    description = "MnasNet-A1 (separable-conv stem, MBConv, optional SE, ReLU) with sampled stages"
    _keys = _MB_KEYS

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        w = _log_grid(rng, 0.25, 3.0)
        jitter = [_grid(rng, 0.8, 1.2) for _ in range(len(_MNASNET_A1) + 1)]
        return {
            "width_mult": w,
            "stem_channels": _divisible(32 * w),
            # stage 0 is the separable conv: depthwise (expansion 1) without SE, no residual
            "channels": [_divisible(16 * w * jitter[0])]
                        + [_divisible(c * w * j) for (_, _, c, *_), j in zip(_MNASNET_A1, jitter[1:])],
            "depths": [1] + [_int(rng, 1, n + 1) for (_, _, _, n, _, _) in _MNASNET_A1],
            "strides": [1] + [st[4] for st in _MNASNET_A1],
            "kernels": [3] + [_pick(rng, [3, 5]) for _ in _MNASNET_A1],
            "expansions": [1] + [_pick(rng, [3, 6]) for _ in _MNASNET_A1],
            "se": [False] + [bool(rng.random() < 0.5) for _ in _MNASNET_A1],
            "head_channels": _divisible(1280 * max(1.0, w)),
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        return _mb_network(config, act_name="relu", se_act="relu", se_gate="sigmoid", se_of_input=False), \
            _image(batch_size)


# ---------------------------------------------------------------------------- alexnet
_ALEXNET_WIDTHS = (64, 192, 384, 256, 256)


@FAMILIES.register("alexnet")
class AlexNetFamily(_ClassicFamily):
    """AlexNet: five convs with widths x0.1..1.3 (global, log-uniform) x0.7..1.3 (per layer), first kernel
    7/9/11 (stride 4, 55x55 out), later kernels 3/5; two hidden FC layers of 512..4096."""

    name = "alexnet"
    description = "AlexNet with sampled conv widths and kernels and FC widths"
    _keys = ("widths", "kernels", "fc_widths")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        g = _log_grid(rng, 0.1, 1.3)
        mults = [round(g * _grid(rng, 0.7, 1.3), 4) for _ in _ALEXNET_WIDTHS]
        return {
            "width_mult": g,
            "width_mults": mults,
            "widths": [_divisible(w * m) for w, m in zip(_ALEXNET_WIDTHS, mults)],
            "kernels": [_pick(rng, [7, 9, 11])] + [_pick(rng, [3, 5], p=[0.6, 0.4]) for _ in range(4)],
            "fc_widths": [_pick(rng, [512, 1024, 2048, 3072, 4096]) for _ in range(2)],
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        b = _nn()
        nn = b.nn
        w, k = config["widths"], config["kernels"]
        pool = lambda: nn.MaxPool2d(3, 2)  # noqa: E731
        features = [nn.Conv2d(3, w[0], k[0], 4, (k[0] - 7) // 2), nn.ReLU(), pool(),  # 224 -> 55 -> 27
                    b.conv_bn(w[0], w[1], k[1], bn=False), pool()]  # -> 13
        for cin, cout, kk in zip(w[1:4], w[2:5], k[2:5]):
            features.append(b.conv_bn(cin, cout, kk, bn=False))
        features.append(pool())  # -> 6
        fc1, fc2 = config["fc_widths"]
        classifier = [nn.Flatten(), nn.Linear(w[4] * 36, fc1), nn.ReLU(), nn.Linear(fc1, fc2), nn.ReLU(),
                      nn.Linear(fc2, NUM_CLASSES)]
        return nn.Sequential(*features, *classifier), _image(batch_size)


# ---------------------------------------------------------------------------- squeezenet
_FIRE_GROUPS = ((16, 64), (32, 128), (48, 192), (64, 256))  # (squeeze, expand) of the four fire groups


@FAMILIES.register("squeezenet")
class SqueezeNetFamily(_ClassicFamily):
    """SqueezeNet with a 1.0-style (7x7/96 stem, max-pools after fire groups 1 and 3) or 1.1-style
    (3x3/64 stem, pools after groups 1 and 2; exactly SqueezeNet 1.1 at 2 fires per group) layout;
    four groups of 1..3 fires; width x0.2..1.5 (log-uniform) with per-fire squeeze/expand jitter x0.7..1.3; expand
    kernel 3/5."""

    name = "squeezenet"
    description = "SqueezeNet 1.0/1.1 with sampled fire counts, squeeze/expand widths and expand kernels"
    _keys = ("version", "stem_channels", "fires_per_group", "squeeze", "expand", "expand_kernels")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        version = _pick(rng, ["1_0", "1_1"])
        g = _log_grid(rng, 0.2, 1.5)
        counts = [_int(rng, 1, 3) for _ in _FIRE_GROUPS]
        squeeze, expand = [], []
        for (s, e), n in zip(_FIRE_GROUPS, counts):
            for _ in range(n):
                squeeze.append(_divisible(s * g * _grid(rng, 0.7, 1.3)))
                expand.append(_divisible(e * g * _grid(rng, 0.7, 1.3)))
        return {
            "version": version,
            "width_mult": g,
            "stem_channels": _divisible((96 if version == "1_0" else 64) * g * _grid(rng, 0.7, 1.3)),
            "fires_per_group": counts,
            "squeeze": squeeze,
            "expand": expand,  # each of the 1x1 and kxk branches
            "expand_kernels": [_pick(rng, [3, 5], p=[0.7, 0.3]) for _ in squeeze],
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        b = _nn()
        nn = b.nn
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
                layers += [b.conv_bn(c, s, 1, bn=False),
                           b.Branches(b.conv_bn(s, e, 1, bn=False), b.conv_bn(s, e, k, bn=False))]
                c, fire = 2 * e, fire + 1
            if g in pool_after:
                layers.append(pool())
        layers += [b.conv_bn(c, NUM_CLASSES, 1, bn=False), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        return nn.Sequential(*layers), _image(batch_size)


# ---------------------------------------------------------------------------- googlenet
# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of GoogLeNet's inception blocks, per stage
_INCEPTION = (
    ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),
    ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
     (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)),
    ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),
)


@FAMILIES.register("googlenet")
class GoogLeNetFamily(_ClassicFamily):
    """GoogLeNet: stem, then 3 stages of 1..2 / 1..5 / 1..2 inception blocks (the first blocks of the
    reference table); per block a width multiplier (global 0.15..1.2 log-uniform x 0.8..1.2) with per-branch
    jitter, and kernels 3/5 for the two middle branches. BN after every conv."""

    name = "googlenet"
    description = "GoogLeNet (inception blocks) with sampled block counts, branch widths and kernels"
    _keys = ("stem_channels", "blocks_per_stage", "branches", "kernels")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        g = _log_grid(rng, 0.15, 1.2)
        counts = [_int(rng, 1, len(stage)) for stage in _INCEPTION]
        branches, kernels = [], []
        for stage, n in zip(_INCEPTION, counts):
            for ref in stage[:n]:
                m = g * _grid(rng, 0.8, 1.2)
                branches.append([_divisible(c * m * _grid(rng, 0.7, 1.3)) for c in ref])
                kernels.append([_pick(rng, [3, 5], p=[0.6, 0.4]), _pick(rng, [3, 5], p=[0.4, 0.6])])
        return {
            "width_mult": g,
            "stem_channels": [_divisible(64 * g), _divisible(64 * g), _divisible(192 * g)],
            "blocks_per_stage": counts,
            "branches": branches,  # per block: 1x1, kxk reduce, kxk, kxk reduce, kxk, pool proj
            "kernels": kernels,  # per block: kernel of branch 2 and of branch 3
        }

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        b = _nn()
        nn = b.nn
        s1, s2, s3 = config["stem_channels"]
        layers = [b.conv_bn(3, s1, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True), b.conv_bn(s1, s2, 1),
                  b.conv_bn(s2, s3, 3), nn.MaxPool2d(3, 2, ceil_mode=True)]
        c, block = s3, 0
        for stage, n in enumerate(config["blocks_per_stage"]):
            if stage > 0:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            for _ in range(n):
                c1, r2, c2, r3, c3, cp = config["branches"][block]
                k2, k3 = config["kernels"][block]
                layers.append(b.Branches(
                    b.conv_bn(c, c1, 1),
                    nn.Sequential(b.conv_bn(c, r2, 1), b.conv_bn(r2, c2, k2)),
                    nn.Sequential(b.conv_bn(c, r3, 1), b.conv_bn(r3, c3, k3)),
                    nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), b.conv_bn(c, cp, 1)),
                ))
                c, block = c1 + c2 + c3 + cp, block + 1
        layers.append(b.head(c, NUM_CLASSES))
        return nn.Sequential(*layers), _image(batch_size)


# ---------------------------------------------------------------------------- nb201
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_IMAGE_SIZE = 32
NB201_CLASSES = 10


def nb201_arch_str(ops: Sequence[Sequence[str]]) -> str:
    """The NAS-Bench-201 string of a cell: ``ops[j-1][i]`` is the op on edge i -> j (j = 1..3),
    e.g. ``|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...~0|...~1|...~2|``."""
    return "+".join("|" + "|".join(f"{op}~{i}" for i, op in enumerate(row)) + "|" for row in ops)


def nb201_parse_arch(arch: str) -> list[list[str]]:
    """Inverse of :func:`nb201_arch_str`; raises ``InvalidInputError`` on a malformed string."""
    rows = []
    for j, part in enumerate(arch.split("+"), start=1):
        items = [t for t in part.split("|") if t]
        row = []
        for i, item in enumerate(items):
            op, _, src = item.partition("~")
            if op not in NB201_OPS or src != str(i):
                raise InvalidInputError(
                    f"bad NB201 arch {arch!r}: edge {item!r} into node {j}; expected '<op>~{i}' with op in {NB201_OPS}"
                )
            row.append(op)
        if len(row) != j:
            raise InvalidInputError(f"bad NB201 arch {arch!r}: node {j} has {len(row)} edges, expected {j}")
        rows.append(row)
    if len(rows) != 3:
        raise InvalidInputError(f"bad NB201 arch {arch!r}: {len(rows)} nodes, expected 3")
    return rows


@FAMILIES.register("nb201")
class NB201Family(_ClassicFamily):
    """The NAS-Bench-201 network: stem conv3x3 (C channels) -> N cells -> reduction -> N cells (2C)
    -> reduction -> N cells (4C) -> BN-ReLU -> global pool -> linear (10). Samples C in {8,16,32,64},
    N in 1..5 and the cell (six edges, ops uniform over the five NB201 ops); input 32x32."""

    name = "nb201"
    description = "NAS-Bench-201 cell network (sampled cell, C in 8..64, N in 1..5 cells per stage), 32x32 input"
    _keys = ("arch", "C", "N")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        ops = [[_pick(rng, NB201_OPS) for _ in range(j)] for j in range(1, 4)]
        return {"arch": nb201_arch_str(ops), "C": _pick(rng, [8, 16, 32, 64]), "N": _int(rng, 1, 5),
                "num_classes": NB201_CLASSES}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self._check(config)
        b = _nn()
        nn = b.nn
        ops, c, n = nb201_parse_arch(config["arch"]), config["C"], config["N"]
        layers = [nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)]
        for stage in range(3):
            if stage > 0:
                layers.append(b.NB201Reduction(c, 2 * c))
                c *= 2
            layers += [b.NB201Cell(c, ops) for _ in range(n)]
        layers += [nn.BatchNorm2d(c), nn.ReLU(), b.head(c, config.get("num_classes", NB201_CLASSES))]
        return nn.Sequential(*layers), _image(batch_size, NB201_IMAGE_SIZE)


__all__ = [
    "AlexNetFamily", "EfficientNetFamily", "GoogLeNetFamily", "MnasNetFamily", "MobileNetV2Family",
    "MobileNetV3Family", "NB201Family", "NB201_OPS", "ResNetFamily", "SqueezeNetFamily", "VGGFamily",
    "nb201_arch_str", "nb201_parse_arch",
]
