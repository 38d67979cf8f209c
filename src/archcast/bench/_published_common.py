"""Shared pieces of the published-network builders (imports torch): conv-BN-act, heads, residual."""

from __future__ import annotations

import torch
from torch import nn

NUM_CLASSES = 1000
Kernel = int | tuple[int, int]


# --------------------------------------------------------------------------- shared pieces
def _act(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "swish": nn.SiLU, "hswish": nn.Hardswish, "gelu": nn.GELU, "none": nn.Identity,
            "leaky": lambda: nn.LeakyReLU(0.1)}[name]()


def _pair(k: Kernel) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else k


def cba(cin: int, cout: int, k: Kernel, stride: int = 1, *, pad: Kernel | None = None, groups: int = 1,
        a: str = "relu", eps: float = 1e-5) -> nn.Sequential:
    """Conv (no bias) -> BN -> activation; ``pad`` defaults to 'same' (k // 2 per dimension), kernels may be
    rectangular (Inception's 1x7 / 7x1)."""
    kk = _pair(k)
    p = (kk[0] // 2, kk[1] // 2) if pad is None else pad
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kk, stride, p, groups=groups, bias=False),
                               nn.BatchNorm2d(cout, eps=eps)]
    if a != "none":
        layers.append(_act(a))
    return nn.Sequential(*layers)


def _classifier(cin: int) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, NUM_CLASSES))


def _token_head(x: torch.Tensor) -> torch.Tensor:
    return x.mean(1)


class _Residual(nn.Module):
    """``x + f(x)``"""

    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)
