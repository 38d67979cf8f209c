"""CNNs whose normalisation or activation is the experiment: Batch-Channel Normalization
(``bcn_cnn``) and Linear Oscillation activations (``linosc_cnn``) on one ResNet-/MobileNetV2-like
backbone (:class:`ConvNet`). Sampled by cost target."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn

from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import image_input
from archcast.zoo.sampling import CostTargetedFamily, choice, randint


# ============================================================================ CNNs with odd ops
def _conv_plan(c: dict[str, Any]) -> list[tuple[int, int, int, int, int]]:
    """The blocks of a ``ConvNet`` config (see :class:`ConvNet`): ``(in_ch, out_ch, stride, kernel, in_res)`` each."""
    plan = []
    ch = c["stem_channels"]
    res = c["image_size"] // c["stem_stride"]
    for width, blocks, stride, kernel in zip(c["widths"], c["blocks"], c["strides"], c["kernel_sizes"]):
        for b in range(blocks):
            s = stride if b == 0 else 1
            plan.append((ch, width, s, kernel, res))
            ch, res = width, (res + s - 1) // s
    return plan


def _conv_macs(c: dict[str, Any]) -> float:
    res = c["image_size"] // c["stem_stride"]
    macs = res * res * 27 * c["stem_channels"]
    for cin, cout, s, k, r in _conv_plan(c):
        ro = (r + s - 1) // s
        if c["block_type"] == "basic":
            macs += ro * ro * k * k * (cin * cout + cout * cout)
            if s != 1 or cin != cout:
                macs += ro * ro * cin * cout
        else:  # inverted: 1x1 expand, depthwise kxk, 1x1 project
            hidden = cin * c["expand_ratio"]
            macs += r * r * cin * hidden + ro * ro * hidden * k * k + ro * ro * hidden * cout
    return macs + c["widths"][-1] * c["num_classes"]


def _draw_convnet(rng: np.random.Generator) -> dict[str, Any]:
    """A ResNet-like (``basic``) or MobileNetV2-like (``inverted``) backbone config."""
    image_size = choice(rng, [32, 64, 96, 128, 160, 224])
    n_stages = randint(rng, 2, 4)
    width = choice(rng, [16, 24, 32, 48, 64])
    widths = []
    for _ in range(n_stages):
        widths.append(width)
        width = int(round(width * choice(rng, [1.5, 2.0]) / 8) * 8)
    block_type = choice(rng, ["basic", "inverted"])
    return {
        "image_size": image_size,
        "stem_channels": choice(rng, [16, 24, 32]),
        "stem_stride": 1 if image_size <= 64 else 2,
        "block_type": block_type,
        "expand_ratio": choice(rng, [2, 4, 6]) if block_type == "inverted" else 1,  # 1: unused
        "widths": widths,
        "blocks": [randint(rng, 1, 3) for _ in range(n_stages)],
        "strides": [choice(rng, [1, 2])] + [2] * (n_stages - 1),
        "kernel_sizes": [choice(rng, [3, 3, 5]) for _ in range(n_stages)],
        "num_classes": choice(rng, [10, 100, 1000]),
    }


_TINY_CONVNET = {"image_size": 16, "stem_channels": 8, "stem_stride": 1, "block_type": "basic", "expand_ratio": 1,
                 "widths": [8, 16], "blocks": [1, 1], "strides": [1, 2], "kernel_sizes": [3, 3], "num_classes": 10}


class _ConvNetFamily(CostTargetedFamily):
    """A family on the :class:`ConvNet` backbone (configs from :func:`_draw_convnet`)."""

    input_kind = "image"
    version = "1"

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        return _conv_macs(c)


@FAMILIES.register("bcn_cnn")
class BCNConvNetFamily(_ConvNetFamily):
    """A CNN normalised by Batch-Channel Normalization: ``γ·(α·BN(x) + (1−α)·LN(x)) + β`` with a
    learned per-channel mix α, where BN standardises over (N, H, W) and LN over (C, H, W). Written in
    plain ops (ReduceMean/Sub/Pow/Sqrt/Div...), so nothing folds into the convolutions.

    ``bn_stats="batch"`` computes the BN statistics from the input at inference too;
    ``"running"`` uses stored running statistics (then only the LN half is data-dependent).
    """

    name = "bcn_cnn"
    description = "CNN with Batch-Channel Normalization (learned mix of batch and channel statistics) in plain ops"
    macs_range = (5e6, 2e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        config = _draw_convnet(rng)
        config["bn_stats"] = choice(rng, ["batch", "running"])
        config["activation"] = choice(rng, ["relu", "silu"])
        return config

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {**_TINY_CONVNET, "bn_stats": "batch", "activation": "relu"}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        norm = functools.partial(BatchChannelNorm2d, stats=config["bn_stats"])
        act = nn.ReLU if config["activation"] == "relu" else nn.SiLU
        return ConvNet(config, norm, lambda c: act()), (image_input(batch_size, config["image_size"]),)


@FAMILIES.register("linosc_cnn")
class LinOscConvNetFamily(_ConvNetFamily):
    """A CNN (BatchNorm, folded at export) whose activations are Linear Oscillation,
    ``x·sin(α·x + β)`` with α, β learned per channel or as one scalar pair per layer."""

    name = "linosc_cnn"
    description = "CNN with Linear Oscillation activations x*sin(alpha*x+beta), learned alpha/beta"
    macs_range = (5e6, 9e8)  # Sin is costly per element: up to ~60 ms/GFLOP on one thread

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        config = _draw_convnet(rng)
        config["linosc_params"] = choice(rng, ["channel", "scalar"])
        return config

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {**_TINY_CONVNET, "block_type": "inverted", "expand_ratio": 2, "linosc_params": "channel"}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        per_channel = config["linosc_params"] == "channel"

        def act(c: int) -> Any:
            return LinOsc(c if per_channel else 1)

        return ConvNet(config, nn.BatchNorm2d, act), (image_input(batch_size, config["image_size"]),)


# ============================================================================ torch modules
class BatchChannelNorm2d(nn.Module):
    """Batch-Channel Normalization of ``[B, C, H, W]``: ``γ·(α·x̂_batch + (1−α)·x̂_channel) + β``."""

    def __init__(self, c: int, stats: str = "batch", eps: float = 1e-5) -> None:
        super().__init__()
        if stats not in ("batch", "running"):
            raise ValueError(f"stats must be 'batch' or 'running'; got {stats!r}")
        self.eps, self.use_running = eps, stats == "running"
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))
        self.alpha = nn.Parameter(torch.full((c,), 0.5))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def standardise(self, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        mu = x.mean(dims, keepdim=True)
        var = (x - mu).pow(2).mean(dims, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_running:
            mean, var = self.running_mean[:, None, None], self.running_var[:, None, None]
            x_batch = (x - mean) / torch.sqrt(var + self.eps)
        else:
            x_batch = self.standardise(x, (0, 2, 3))
        alpha = self.alpha[:, None, None]
        y = alpha * x_batch + (1 - alpha) * self.standardise(x, (1, 2, 3))
        return y * self.weight[:, None, None] + self.bias[:, None, None]


class LinOsc(nn.Module):
    """Linear Oscillation ``x·sin(α·x + β)``; α, β per channel (``c`` > 1) or scalars (``c`` = 1)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(c, 1, 1))
        self.beta = nn.Parameter(torch.zeros(c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sin(self.alpha * x + self.beta)


class ConvBlock(nn.Module):
    """``basic``: conv-norm-act-conv-norm + shortcut, act. ``inverted``: 1×1 expand, depthwise,
    1×1 project (no act after it), residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, k: int, c: dict[str, Any], norm: Any, act: Any) -> None:
        super().__init__()
        self.basic = c["block_type"] == "basic"
        if self.basic:
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), norm(cout), act(cout),
                nn.Conv2d(cout, cout, k, 1, k // 2, bias=False), norm(cout))
            self.out_act = act(cout)
        else:
            h = cin * c["expand_ratio"]
            self.body = nn.Sequential(
                nn.Conv2d(cin, h, 1, bias=False), norm(h), act(h),
                nn.Conv2d(h, h, k, stride, k // 2, groups=h, bias=False), norm(h), act(h),
                nn.Conv2d(h, cout, 1, bias=False), norm(cout))
        self.shortcut: nn.Module | None = None
        if stride == 1 and cin == cout:
            self.shortcut = nn.Identity()
        elif self.basic:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.out_act(y) if self.basic else y


class ConvNet(nn.Module):
    """Stem conv, the blocks of :func:`_conv_plan`, global average pool, Linear.
    ``norm(c)`` and ``act(c)`` build the normalisation and activation for ``c`` channels."""

    def __init__(self, c: dict[str, Any], norm: Any, act: Any) -> None:
        super().__init__()
        s = c["stem_channels"]
        layers: list[nn.Module] = [nn.Conv2d(3, s, 3, c["stem_stride"], 1, bias=False), norm(s), act(s)]
        layers += [ConvBlock(cin, cout, stride, k, c, norm, act) for cin, cout, stride, k, _ in _conv_plan(c)]
        self.features = nn.Sequential(*layers)
        self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(c["widths"][-1], c["num_classes"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


__all__ = ["BCNConvNetFamily", "BatchChannelNorm2d", "ConvNet", "LinOsc", "LinOscConvNetFamily"]
