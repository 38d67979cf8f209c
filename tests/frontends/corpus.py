"""A corpus of real-world-style networks in plain torch, each using ``x.shape``/``x.size()`` in
``forward`` the way published architectures do (tests build and export them themselves).

Every entry: ``name -> (module factory, example input shape)``. The patterns, and where they come
from: window partition/merge (Swin, MaxViT grid attention, CoAtNet, Twins), channel shuffle with a
computed split (ShuffleNet-V2), weight standardisation by computed dims (NF-Nets, BiT), TF "same"
padding computed from the input size (MixNet, EfficientNet TF ports), unfolding with ``Range``
(TNT), a gated split of a computed half (gMLP), an LSTM mixer (sequencer-style), an upsampling
decoder with Resize and ConvTranspose (U-Net/FPN), patch merging with a computed transpose
(hierarchical ViTs), multi-head self-attention (ViT), a reduction head (ReduceSum/ReduceMean).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class WindowAttention(nn.Module):
    """Swin-style: partition into 4x4 windows, attend inside each, merge back (x.shape)."""

    def __init__(self, c: int = 16, w: int = 4) -> None:
        super().__init__()
        self.w, self.qkv, self.proj = w, nn.Linear(c, 3 * c), nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, wd = x.shape
        w = self.w
        t = x.permute(0, 2, 3, 1).reshape(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(c), dim=-1)
        t = self.proj(a @ v)
        return t.reshape(b, h // w, wd // w, w, w, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, wd)


class ChannelShuffle(nn.Module):
    """ShuffleNet-V2 unit: split channels in half (computed), convolve one half, shuffle."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c // 2, c // 2, 3, padding=1, groups=c // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.size()
        x1, x2 = x.split(c // 2, dim=1)
        y = torch.cat([x1, torch.relu(self.conv(x2))], 1)
        return y.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)


class WSConv(nn.Conv2d):
    """Weight-standardised conv (NF-Net): the weight is reshaped by its computed dims."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        flat = w.reshape(w.shape[0], -1)
        flat = (flat - flat.mean(dim=1, keepdim=True)) / (flat.std(dim=1, keepdim=True) + 1e-5)
        return F.conv2d(x, flat.reshape(w.shape), self.bias, self.stride, self.padding)


class SamePad(nn.Module):
    """TF "same" padding: pads computed from the input size before a stride-2 conv (MixNet)."""

    def __init__(self, c: int = 16, k: int = 3, s: int = 2) -> None:
        super().__init__()
        self.k, self.s, self.conv = k, s, nn.Conv2d(c, c, k, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / self.s) - 1) * self.s + self.k - ih, 0)
        pw = max((math.ceil(iw / self.s) - 1) * self.s + self.k - iw, 0)
        return self.conv(F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2]))


class Unfold(nn.Module):
    """TNT-style pixel unfolding: patch indices from ``torch.arange`` over the input size."""

    def __init__(self, c: int = 8, p: int = 4) -> None:
        super().__init__()
        self.p, self.fc = p, nn.Linear(c * p * p, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        idx = torch.arange(0, h, self.p)
        rows = x.index_select(2, idx)  # a Range over the computed height
        patches = F.unfold(x, self.p, stride=self.p).transpose(1, 2)
        return self.fc(patches) + rows.mean()


class GatedMLP(nn.Module):
    """gMLP spatial gating unit: split the channels at a computed half, gate one by the other."""

    def __init__(self, d: int = 32, n: int = 16) -> None:
        super().__init__()
        self.fc1, self.norm = nn.Linear(d, 2 * d), nn.LayerNorm(d)
        self.spatial, self.fc2 = nn.Linear(n, n), nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = F.gelu(self.fc1(x))
        half = u.shape[-1] // 2
        a, g = u[..., :half], u[..., half:]
        g = self.spatial(self.norm(g).transpose(1, 2)).transpose(1, 2)
        return self.fc2(a * g)


class LSTMMixer(nn.Module):
    """Sequencer-style token mixer: an LSTM over the tokens of a sequence."""

    def __init__(self, d: int = 16, h: int = 32) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return y


class UpDecoder(nn.Module):
    """U-Net/FPN decoder: bilinear Resize to the skip's computed size, ConvTranspose, concat."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.down, self.up = nn.Conv2d(c, c, 3, 2, 1), nn.ConvTranspose2d(c, c, 2, 2)
        self.fuse = nn.Conv2d(3 * c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.down(x)
        r = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, r, self.up(d)], 1))


class PatchMerge(nn.Module):
    """Hierarchical-ViT patch merging: a 2x2 space-to-channel with a computed transpose."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.norm, self.red = nn.LayerNorm(4 * c), nn.Linear(4 * c, 2 * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        h = w = int(math.isqrt(n))
        t = x.view(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).reshape(b, (h // 2) * (w // 2), 4 * c)
        return self.red(self.norm(t))


class SelfAttention(nn.Module):
    """ViT block core: nn.MultiheadAttention with a computed head split."""

    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.attn(x, x, x, need_weights=False)
        return y.sum(dim=-1, keepdim=True) + y.mean(dim=1, keepdim=True)


class CyclicShift(nn.Module):
    """Swin's shifted windows: ``torch.roll`` by a fixed shift (Slice/Concat at computed offsets)."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.roll(x, shifts=(-2, -2), dims=(2, 3)))


class GridAttention(nn.Module):
    """MaxViT grid partition: tokens strided over the whole image (computed grid)."""

    def __init__(self, c: int = 16, g: int = 2) -> None:
        super().__init__()
        self.g, self.fc = g, nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = self.g
        t = x.view(b, c, g, h // g, g, w // g).permute(0, 3, 5, 2, 4, 1).reshape(-1, g * g, c)
        t = torch.softmax(t @ t.transpose(1, 2), -1) @ self.fc(t)
        return t.view(b, h // g, w // g, g, g, c).permute(0, 5, 3, 1, 4, 2).reshape(b, c, h, w)


class PixelShuffleHead(nn.Module):
    """Super-resolution head: conv to r^2 channels then PixelShuffle (DepthToSpace)."""

    def __init__(self, c: int = 8, r: int = 2) -> None:
        super().__init__()
        self.conv, self.ps = nn.Conv2d(c, 3 * r * r, 3, padding=1), nn.PixelShuffle(r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ps(self.conv(x))


class SqueezeExcite(nn.Module):
    """MobileNetV3/EfficientNet SE block with HardSwish, gating by a computed mean."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return F.hardswish(x * torch.sigmoid(self.fc2(F.relu(self.fc1(s)))))


class PosEmbedding(nn.Module):
    """DETR/ViT-style sinusoidal positions from ``torch.arange`` over the sequence length."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, d = x.shape[1], x.shape[2]
        pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
        freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
        pe = torch.cat([torch.sin(pos * freq), torch.cos(pos * freq)], dim=1)
        return self.fc(x + pe)


class EncoderLayer(nn.Module):
    """A whole nn.TransformerEncoderLayer (ViT/BERT block)."""

    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.0, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class EinsumMixer(nn.Module):
    """Attention written with ``torch.einsum`` (many research codebases)."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.q, self.k = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.einsum("bnd,bmd->bnm", self.q(x), self.k(x)).softmax(-1)
        return torch.einsum("bnm,bmd->bnd", a, x)


class GRUHead(nn.Module):
    """A bidirectional GRU over feature-map columns (text recognition heads)."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.gru = nn.GRU(c * 4, 16, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y, _ = self.gru(x.permute(0, 3, 1, 2).reshape(b, w, c * h))
        return y


CORPUS: dict[str, tuple[type[nn.Module], tuple[int, ...]]] = {
    "cyclic_shift": (CyclicShift, (1, 16, 8, 8)),
    "grid_attention": (GridAttention, (1, 16, 8, 8)),
    "pixel_shuffle": (PixelShuffleHead, (1, 8, 8, 8)),
    "squeeze_excite": (SqueezeExcite, (1, 16, 8, 8)),
    "pos_embedding": (PosEmbedding, (1, 10, 16)),
    "encoder_layer": (EncoderLayer, (1, 10, 32)),
    "einsum_mixer": (EinsumMixer, (1, 10, 16)),
    "gru_head": (GRUHead, (1, 8, 4, 12)),
    "window_attention": (WindowAttention, (1, 16, 8, 8)),
    "channel_shuffle": (ChannelShuffle, (1, 16, 8, 8)),
    "weight_standardisation": (lambda: WSConv(8, 16, 3, padding=1), (1, 8, 8, 8)),  # type: ignore[dict-item]
    "same_padding": (SamePad, (1, 16, 9, 9)),
    "unfold": (Unfold, (1, 8, 8, 8)),
    "gated_mlp": (GatedMLP, (1, 16, 32)),
    "lstm_mixer": (LSTMMixer, (10, 1, 16)),
    "upsampling_decoder": (UpDecoder, (1, 8, 8, 8)),
    "patch_merging": (PatchMerge, (1, 16, 16)),
    "self_attention": (SelfAttention, (1, 16, 32)),
}


def dynamic_axes(shape: tuple[int, ...]) -> dict[str, dict[int, str]]:
    """Every dim symbolic except the channel/feature one, as ``dynamic_axes`` exports declare."""
    keep = 1 if len(shape) == 4 else len(shape) - 1
    return {"x": {i: f"d{i}" for i in range(len(shape)) if i != keep}}


def export(name: str, dynamic: bool, opset: int = 17) -> bytes:
    """ONNX bytes of corpus entry ``name`` (legacy TorchScript exporter, eval mode)."""
    import io
    import warnings

    factory, shape = CORPUS[name]
    torch.manual_seed(0)
    module = factory().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(*shape),), buf, dynamo=False, opset_version=opset, input_names=["x"],
                          dynamic_axes=dynamic_axes(shape) if dynamic else None)
    return buf.getvalue()
