"""Torch building blocks shared by several zoo families (plain torch, every op visible in ONNX).

Convolutional: :func:`act`, :func:`conv_bn`, :func:`head`, :class:`SqueezeExcite`,
:class:`Branches`, :class:`LayerNorm2d`. Token models: :class:`Mlp`, :class:`Attention` (explicit
Linear/MatMul/Softmax, no ``nn.MultiheadAttention``), :func:`patch_tokens`, :class:`EncoderBlock`,
:class:`RMSNorm`. Inputs: :func:`image_input`, :func:`token_input`.
"""

from __future__ import annotations

import torch
from torch import nn

_ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "swish": nn.SiLU, "hswish": nn.Hardswish, "sigmoid": nn.Sigmoid,
         "hsigmoid": nn.Hardsigmoid, "gelu": nn.GELU}


def act(name: str) -> nn.Module:
    """The activation called ``name`` (``"none"``: identity)."""
    return _ACTS[name]() if name != "none" else nn.Identity()


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


class EfficientChannelAttention(nn.Module):
    """ECA gate: ``x * sigmoid(conv1d_k(avgpool(x)))``, a 1-D conv across channels instead of SE's MLP."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.pool, self.conv = nn.AdaptiveAvgPool2d(1), nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        w = self.conv(self.pool(x).view(b, 1, c)).view(b, c, 1, 1)
        return x * torch.sigmoid(w)


class SpatialGate(nn.Module):
    """CBAM's spatial gate: ``x * sigmoid(conv7x7([mean_c(x), max_c(x)]))``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(stats))


GATES = ("none", "se", "eca", "cbam")


def gate(kind: str, c: int, squeeze: int) -> nn.Module:
    """A channel-attention gate on ``c`` channels: ``none``, ``se`` (squeeze width ``squeeze``),
    ``eca`` or ``cbam`` (SE then the spatial gate)."""
    if kind == "none":
        return nn.Identity()
    if kind == "eca":
        return EfficientChannelAttention()
    se = SqueezeExcite(c, squeeze, "relu", "sigmoid")
    return se if kind == "se" else nn.Sequential(se, SpatialGate())


class Branches(nn.Module):
    """Runs parallel branches on one input and concatenates them on channels (fire, inception)."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of ``[B, C, H, W]``, decomposed (no permute)."""

    def __init__(self, c: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        x = (x - mu) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class Mlp(nn.Module):
    """Linear → GELU → Linear (GELU exports as its Erf formula at opset 17)."""

    def __init__(self, dim: int, hidden: int, out: int | None = None) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention from Linear/MatMul/Softmax: ``[B, T, C] -> [B, T, C]``.

    ``bias`` (``[heads, T, T]``) and ``mask`` (``[W, T, T]``, the batch being ``B' × W``
    windows) are added to the scores before the softmax.
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, 3 * dim, bias=qkv_bias), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, T, hd]
        scores = (q * self.scale) @ k.transpose(-2, -1)  # [B, heads, T, T]
        if bias is not None:
            scores = scores + bias
        if mask is not None:
            w = mask.shape[0]
            scores = (scores.view(b // w, w, self.heads, t, t) + mask[None, :, None]).view(b, self.heads, t, t)
        out = scores.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, t, c))


def patch_tokens(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W] -> [B, H·W, C]``"""
    b, c, h, w = x.shape
    return x.reshape(b, c, h * w).transpose(1, 2)


class EncoderBlock(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qkv_bias: bool) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads, qkv_bias)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def image_input(batch_size: int, size: int) -> torch.Tensor:
    """A seeded example image batch ``[B, 3, size, size]``."""
    return torch.randn(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))


def token_input(batch_size: int, seq_len: int, vocab_size: int) -> torch.Tensor:
    """Seeded example token ids ``[B, seq_len]`` (int64) below ``vocab_size``."""
    return torch.randint(0, vocab_size, (batch_size, seq_len), generator=torch.Generator().manual_seed(0))


__all__ = ["Attention", "Branches", "EfficientChannelAttention", "EncoderBlock", "GATES", "LayerNorm2d", "Mlp",
           "RMSNorm", "SpatialGate", "SqueezeExcite", "act", "conv_bn", "gate", "head", "image_input", "patch_tokens",
           "token_input"]
