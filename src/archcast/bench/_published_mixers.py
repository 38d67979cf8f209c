"""Token-mixer and transformer published networks (MobileViT ... LeViT) for :mod:`archcast.bench._published_models`."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from archcast.bench._published_common import NUM_CLASSES, _act, _classifier, _Residual, _token_head, cba
from archcast.zoo.layers import Attention, patch_tokens


# --------------------------------------------------------------------------- transformer pieces
class _PreNormBlock(nn.Module):
    """Pre-LN transformer block with a configurable MLP activation (MobileViT: SiLU)."""

    def __init__(self, dim: int, heads: int, hidden: int, a: str = "gelu") -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), _act(a), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# --------------------------------------------------------------------------- MobileViT-S
class _MV2(nn.Module):
    """MobileNetV2 inverted residual with SiLU (MobileViT's MV2 block)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4) -> None:
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(cba(cin, mid, 1, a="swish"), cba(mid, mid, 3, stride, groups=mid, a="swish"),
                                  cba(mid, cout, 1, a="none"))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return x + h if self.residual else h


class _MobileViTBlock(nn.Module):
    """Mehta & Rastegari 2022, Figure 1(b): local 3x3 + 1x1 (C -> d), unfold into 2x2 patches, ``depth``
    transformer layers across patches (per pixel position), fold, 1x1 (d -> C), concat with the input, 3x3 fuse."""

    def __init__(self, c: int, d: int, depth: int, heads: int = 4, patch: int = 2) -> None:
        super().__init__()
        self.p = patch
        self.local = nn.Sequential(cba(c, c, 3, a="swish"), nn.Conv2d(c, d, 1, bias=False))
        self.blocks = nn.Sequential(*[_PreNormBlock(d, heads, 2 * d, "swish") for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.proj = cba(d, c, 1, a="swish")
        self.fuse = cba(2 * c, c, 3, a="swish")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.local(x)
        b, d, hh, ww = y.shape
        p, h, w = self.p, hh // self.p, ww // self.p
        t = y.reshape(b, d, h, p, w, p).permute(0, 3, 5, 2, 4, 1).reshape(b * p * p, h * w, d)  # unfold
        t = self.norm(self.blocks(t))
        y = t.reshape(b, p, p, h, w, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, hh, ww)  # fold
        return self.fuse(torch.cat([x, self.proj(y)], dim=1))


def build_mobilevit_s() -> nn.Module:
    """MobileViT-S (Table 4 / Figure 1): MV2 (expansion 4) stages, MobileViT blocks with d = 144/192/240 and
    L = 2/4/3 at 1/8, 1/16, 1/32 resolution, 1x1 conv to 640."""
    return nn.Sequential(
        cba(3, 16, 3, 2, a="swish"), _MV2(16, 32, 1), _MV2(32, 64, 2), _MV2(64, 64, 1), _MV2(64, 64, 1),
        _MV2(64, 96, 2), _MobileViTBlock(96, 144, 2),
        _MV2(96, 128, 2), _MobileViTBlock(128, 192, 4),
        _MV2(128, 160, 2), _MobileViTBlock(160, 240, 3),
        cba(160, 640, 1, a="swish"), _classifier(640))


# --------------------------------------------------------------------------- PoolFormer-S12
class _PoolFormerBlock(nn.Module):
    """MetaFormer block with pooling token mixer (Yu et al. 2022): x + s1 * (pool(n(x)) - n(x)), then
    x + s2 * MLP(n(x)); GroupNorm with one group, layer scale."""

    def __init__(self, c: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1, self.pool = nn.GroupNorm(1, c), nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.norm2 = nn.GroupNorm(1, c)
        self.mlp = nn.Sequential(nn.Conv2d(c, mlp_ratio * c, 1), nn.GELU(), nn.Conv2d(mlp_ratio * c, c, 1))
        self.ls1 = nn.Parameter(torch.full((c, 1, 1), 1e-5))
        self.ls2 = nn.Parameter(torch.full((c, 1, 1), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm1(x)
        x = x + self.ls1 * (self.pool(n) - n)
        return x + self.ls2 * self.mlp(self.norm2(x))


def build_poolformer_s12() -> nn.Module:
    """PoolFormer-S12 (Table 1): stages of (2, 2, 6, 2) blocks at widths (64, 128, 320, 512); 7x7/4 patch embedding,
    3x3/2 conv down-sampling between stages."""
    layers: list[nn.Module] = []
    cin = 3
    for i, (c, n) in enumerate(zip((64, 128, 320, 512), (2, 2, 6, 2))):
        layers.append(nn.Conv2d(cin, c, 7, 4, 2) if i == 0 else nn.Conv2d(cin, c, 3, 2, 1))
        layers += [_PoolFormerBlock(c) for _ in range(n)]
        cin = c
    layers += [nn.GroupNorm(1, cin), _classifier(cin)]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- ResMLP-S12
class _Affine(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha, self.beta = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * x + self.beta


class _ResMLPBlock(nn.Module):
    """Touvron et al. 2022: x + ls1 * Linear_tokens(Aff(x)), then x + ls2 * MLP(Aff(x)) (GELU, 4x)."""

    def __init__(self, dim: int, tokens: int) -> None:
        super().__init__()
        self.aff1, self.token = _Affine(dim), nn.Linear(tokens, tokens)
        self.aff2 = _Affine(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ls1, self.ls2 = nn.Parameter(torch.full((dim,), 0.1)), nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1 * self.token(self.aff1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ls2 * self.mlp(self.aff2(x))


class _PatchMLP(nn.Module):
    """16x16 patch embedding -> token blocks -> final norm -> token mean -> linear classifier."""

    def __init__(self, dim: int, blocks: Sequence[nn.Module], norm: nn.Module, patch: int = 16) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.blocks, self.norm = nn.Sequential(*blocks), norm
        self.fc = nn.Linear(dim, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(_token_head(self.norm(self.blocks(patch_tokens(self.embed(x))))))


def build_resmlp_s12() -> nn.Module:
    """ResMLP-S12: 12 blocks of width 384 on 14x14 = 196 patches."""
    return _PatchMLP(384, [_ResMLPBlock(384, 196) for _ in range(12)], _Affine(384))


# --------------------------------------------------------------------------- gMLP-S
class _GMLPBlock(nn.Module):
    """Liu et al. 2021, Figure 1: LN -> Linear (d -> d_ffn) -> GELU -> spatial gating unit (split; v = LN(v);
    v = Linear_tokens(v); u * v) -> Linear (d_ffn/2 -> d), residual."""

    def __init__(self, dim: int, ffn: int, tokens: int) -> None:
        super().__init__()
        self.norm, self.fc1, self.act = nn.LayerNorm(dim), nn.Linear(dim, ffn), nn.GELU()
        self.half = ffn // 2
        self.gate_norm, self.spatial = nn.LayerNorm(self.half), nn.Linear(tokens, tokens)
        self.fc2 = nn.Linear(self.half, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(self.norm(x)))
        u, v = h[..., :self.half], h[..., self.half:]
        v = self.spatial(self.gate_norm(v).transpose(1, 2)).transpose(1, 2)
        return x + self.fc2(u * v)


def build_gmlp_s() -> nn.Module:
    """gMLP-S (Table 1): 30 blocks, d_model 256, d_ffn 1536, 16x16 patches."""
    return _PatchMLP(256, [_GMLPBlock(256, 1536, 196) for _ in range(30)], nn.LayerNorm(256))


# --------------------------------------------------------------------------- PVT-v2-b0
class _SRAttention(nn.Module):
    """Spatial-reduction attention (PVT): keys and values from the tokens down-sampled by an ``sr`` x ``sr``
    strided conv + LayerNorm; queries from every token."""

    def __init__(self, dim: int, heads: int, sr: int, hw: int) -> None:
        super().__init__()
        self.heads, self.scale, self.hw, self.sr = heads, (dim // heads) ** -0.5, hw, sr
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        if sr > 1:
            self.reduce, self.rnorm = nn.Conv2d(dim, dim, sr, sr), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        hd = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, hd).transpose(1, 2)
        if self.sr > 1:
            img = x.transpose(1, 2).reshape(b, c, self.hw, self.hw)
            x = self.rnorm(patch_tokens(self.reduce(img)))
        kv = self.kv(x).reshape(b, -1, 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        att = ((q * self.scale) @ kv[0].transpose(-2, -1)).softmax(dim=-1)
        return self.proj((att @ kv[1]).transpose(1, 2).reshape(b, n, c))


class _ConvMlp(nn.Module):
    """PVT-v2 feed-forward: Linear -> depthwise 3x3 (on the token grid) -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int, hw: int) -> None:
        super().__init__()
        self.hw = hw
        self.fc1, self.dw = nn.Linear(dim, hidden), nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act, self.fc2 = nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        b, n, c = h.shape
        h = patch_tokens(self.dw(h.transpose(1, 2).reshape(b, c, self.hw, self.hw)))
        return self.fc2(self.act(h))


class _PVTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, sr: int, hw: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), _SRAttention(dim, heads, sr, hw)
        self.norm2, self.mlp = nn.LayerNorm(dim), _ConvMlp(dim, dim * mlp_ratio, hw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PVTStage(nn.Module):
    """Overlapping patch embedding (conv + LN) -> blocks -> LN, back to an image for the next stage."""

    def __init__(self, cin: int, dim: int, k: int, stride: int, hw: int, depth: int, heads: int, mlp_ratio: int,
                 sr: int) -> None:
        super().__init__()
        self.hw = hw
        self.embed, self.enorm = nn.Conv2d(cin, dim, k, stride, k // 2), nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[_PVTBlock(dim, heads, mlp_ratio, sr, hw) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.norm(self.blocks(self.enorm(patch_tokens(self.embed(x)))))
        b, n, c = t.shape
        return t.transpose(1, 2).reshape(b, c, self.hw, self.hw)


def build_pvt_v2_b0(image_size: int = 224) -> nn.Module:
    """Wang et al. 2022 (PVT v2), B0: widths (32, 64, 160, 256), heads (1, 2, 5, 8), MLP ratios (8, 8, 4, 4),
    2 blocks per stage, reduction ratios (8, 4, 2, 1)."""
    stages: list[nn.Module] = []
    cin, hw = 3, image_size
    for i, (d, h, m, sr) in enumerate(zip((32, 64, 160, 256), (1, 2, 5, 8), (8, 8, 4, 4), (8, 4, 2, 1))):
        k, s = (7, 4) if i == 0 else (3, 2)
        hw //= s
        stages.append(_PVTStage(cin, d, k, s, hw, 2, h, m, sr))
        cin = d
    return nn.Sequential(*stages, _classifier(cin))


# --------------------------------------------------------------------------- LeViT-128S
class _LinBN(nn.Module):
    """LeViT's Linear (no bias) -> BatchNorm over channels, on ``[B, N, C]`` tokens."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.lin, self.bn = nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return self.bn(self.lin(x).flatten(0, 1)).reshape(b, n, -1)


def _bias_index(k_res: int, stride: int) -> tuple[int, torch.Tensor]:
    """LeViT's attention-bias table: one learned bias per head per |dx|, |dy| offset between a query point
    (the key grid subsampled by ``stride``) and a key point."""
    q_res = (k_res - 1) // stride + 1
    keys = [(i, j) for i in range(k_res) for j in range(k_res)]
    queries = [(i * stride, j * stride) for i in range(q_res) for j in range(q_res)]
    offsets: dict[tuple[int, int], int] = {}
    idx = [offsets.setdefault((abs(qi - ki), abs(qj - kj)), len(offsets)) for qi, qj in queries for ki, kj in keys]
    return len(offsets), torch.tensor(idx, dtype=torch.long).view(len(queries), len(keys))


class _LevitAttention(nn.Module):
    """Attention with per-head positional bias, small keys (``kd``), values of ``ratio * kd``, Hardswish before the
    projection; ``stride`` 2 subsamples the queries (the shrinking attention between stages)."""

    def __init__(self, cin: int, cout: int, kd: int, heads: int, ratio: int, res: int, stride: int = 1) -> None:
        super().__init__()
        self.kd, self.dv, self.heads, self.res, self.stride = kd, ratio * kd, heads, res, stride
        self.scale = kd ** -0.5
        if stride == 1:
            self.qkv = _LinBN(cin, heads * (2 * kd + self.dv))
        else:
            self.kv, self.q = _LinBN(cin, heads * (kd + self.dv)), _LinBN(cin, heads * kd)
        n_off, idx = _bias_index(res, stride)
        self.bias = nn.Parameter(torch.zeros(heads, n_off))
        self.register_buffer("bias_idx", idx, persistent=False)
        self.proj = nn.Sequential(nn.Hardswish(), _LinBN(heads * self.dv, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        h = self.heads
        if self.stride == 1:
            q, k, v = self.qkv(x).view(b, n, h, -1).split([self.kd, self.kd, self.dv], dim=3)
            nq = n
        else:
            k, v = self.kv(x).view(b, n, h, -1).split([self.kd, self.dv], dim=3)
            xs = x.view(b, self.res, self.res, c)[:, ::self.stride, ::self.stride].reshape(b, -1, c)
            nq = xs.shape[1]
            q = self.q(xs).view(b, nq, h, self.kd)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * self.scale + self.bias[:, self.bias_idx]
        out = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, nq, h * self.dv)
        return self.proj(out)


def _levit_mlp(dim: int, ratio: int) -> nn.Module:
    return _Residual(nn.Sequential(_LinBN(dim, ratio * dim), nn.Hardswish(), _LinBN(ratio * dim, dim)))


class _LeViT(nn.Module):
    """Graham et al. 2021: 4-conv 3x3/2 stem (16x down-sampling), three attention stages separated by shrinking
    attention blocks, BN + linear classifier and distillation heads averaged (the eval-time output)."""

    def __init__(self, dims: Sequence[int] = (128, 256, 384), heads: Sequence[int] = (4, 6, 8),
                 depths: Sequence[int] = (2, 3, 4), kd: int = 16, image_size: int = 224) -> None:
        super().__init__()
        d0 = dims[0]
        self.stem = nn.Sequential(cba(3, d0 // 8, 3, 2, a="hswish"), cba(d0 // 8, d0 // 4, 3, 2, a="hswish"),
                                  cba(d0 // 4, d0 // 2, 3, 2, a="hswish"), cba(d0 // 2, d0, 3, 2, a="none"))
        res = image_size // 16
        blocks: list[nn.Module] = []
        for i, (d, h, n) in enumerate(zip(dims, heads, depths)):
            if i > 0:  # shrinking attention (heads = input width / 16, value ratio 4) + MLP
                blocks += [_LevitAttention(dims[i - 1], d, kd, dims[i - 1] // 16, 4, res, stride=2), _levit_mlp(d, 2)]
                res = (res - 1) // 2 + 1
            for _ in range(n):
                blocks += [_Residual(_LevitAttention(d, d, kd, h, 2, res)), _levit_mlp(d, 2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.BatchNorm1d(dims[-1]), nn.Linear(dims[-1], NUM_CLASSES))
        self.head_dist = nn.Sequential(nn.BatchNorm1d(dims[-1]), nn.Linear(dims[-1], NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.blocks(patch_tokens(self.stem(x))).mean(1)
        return (self.head(t) + self.head_dist(t)) / 2


def build_levit_128s() -> nn.Module:
    """LeViT-128S (Table 2): widths (128, 256, 384), heads (4, 6, 8), depths (2, 3, 4), key dim 16."""
    return _LeViT()
