"""The canary set: five fixed small networks whose times track the machine's speed.

Measured at the start of every pass and at intervals in every worker (:mod:`archcast.collect.passes`),
their times give the speed index stored with each measurement (:class:`~archcast.collect.labels.SpeedIndex`).
They cover the kinds of work whose speed drifts differently: dense convolution, depthwise
convolution, attention, matrix multiplication and memory-bound elementwise/transpose traffic.
Each takes 1-4 ms on one thread of the reference CPU, so a checkpoint costs about 2 s.

The networks are defined here, not drawn from the zoo, so that a zoo change cannot move the
reference: the ONNX of a canary depends only on this file and the torch exporter (its fingerprint
is recorded; a changed canary is a new canary).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CANARY_NAMES = ("conv", "depthwise", "attention", "matmul", "memory")
CANARY_FAMILY = "canary"


def _conv() -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU()]
    for _ in range(3):
        layers += [nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()]
    return nn.Sequential(*layers), (torch.randn(1, 3, 112, 112),)


def _depthwise() -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    def block(c: int, e: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(c, c * e, 1), nn.BatchNorm2d(c * e), nn.ReLU6(),
                             nn.Conv2d(c * e, c * e, 3, padding=1, groups=c * e), nn.BatchNorm2d(c * e), nn.ReLU6(),
                             nn.Conv2d(c * e, c, 1), nn.BatchNorm2d(c))
    return nn.Sequential(block(24, 6), block(24, 6), block(24, 6)), (torch.randn(1, 24, 56, 56),)


def _attention() -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    layer = nn.TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=256, batch_first=True, dropout=0.0)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False), (torch.randn(1, 64, 128),)


def _matmul() -> tuple[Any, tuple[Any, ...]]:
    import torch
    from torch import nn

    return nn.Sequential(nn.Linear(512, 1024), nn.GELU(), nn.Linear(1024, 512), nn.GELU(), nn.Linear(512, 512)), \
        (torch.randn(1, 64, 512),)


class _Memory:
    """Elementwise ops, transposes and a concat over a 0.5 MB tensor: bound by memory traffic."""

    @staticmethod
    def build() -> tuple[Any, tuple[Any, ...]]:
        import torch
        from torch import nn

        class Memory(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                y = torch.relu(x * 1.5 + 0.25)
                z = y.transpose(1, 3).contiguous() + 1.0
                w = torch.cat([z, z * 0.5], dim=3)
                return w.transpose(1, 2).contiguous() - 0.125

        return Memory(), (torch.randn(1, 32, 64, 64),)


_BUILDERS: dict[str, Callable[[], tuple[Any, tuple[Any, ...]]]] = {
    "conv": _conv, "depthwise": _depthwise, "attention": _attention, "matmul": _matmul, "memory": _Memory.build,
}


def canary_onnx(name: str) -> bytes:
    """Weight-free ONNX bytes of canary ``name`` (deterministic: fixed seed, one thread)."""
    if name not in _BUILDERS:
        from archcast.errors import InvalidInputError

        raise InvalidInputError(f"unknown canary {name!r}; valid: {', '.join(CANARY_NAMES)}")
    import onnx
    import torch

    from archcast._torch import torch_threads
    from archcast.frontends.onnx import strip_weights
    from archcast.frontends.torch import export_onnx_bytes

    with torch_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module, inputs = _BUILDERS[name]()
        module.eval()
        data = export_onnx_bytes(module, inputs)
    return strip_weights(onnx.load_from_string(data)).SerializeToString()


def canary_set(names: tuple[str, ...] = CANARY_NAMES) -> dict[str, bytes]:
    """``{name: weight-free ONNX bytes}`` of the canaries, in ``names`` order."""
    return {n: canary_onnx(n) for n in names}


__all__ = ["CANARY_FAMILY", "CANARY_NAMES", "canary_onnx", "canary_set"]
