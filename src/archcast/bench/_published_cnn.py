"""Convolutional published networks (Inception-v3 ... MobileNetV1) for :mod:`archcast.bench._published_models`."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from archcast.bench._published_common import NUM_CLASSES, Kernel, _act, _classifier, cba
from archcast.zoo.layers import Branches, SqueezeExcite


# --------------------------------------------------------------------------- Inception-v3
def build_inception_v3() -> nn.Module:
    """Szegedy et al. 2016, Figures 5-7 and Table 1 (the torchvision-style widths); no auxiliary head."""

    def c(i: int, o: int, k: Kernel, s: int = 1, pad: Kernel | None = None) -> nn.Sequential:
        return cba(i, o, k, s, pad=pad, eps=1e-3)

    def pool_proj(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(nn.AvgPool2d(3, 1, 1), c(i, o, 1))

    def block_a(i: int, pf: int) -> nn.Module:  # 35x35, factorised 5x5 -> two 3x3 on one branch
        return Branches(c(i, 64, 1), nn.Sequential(c(i, 48, 1), c(48, 64, 5)),
                        nn.Sequential(c(i, 64, 1), c(64, 96, 3), c(96, 96, 3)), pool_proj(i, pf))

    def block_c(c7: int) -> nn.Module:  # 17x17, n x n factorised to 1x7 / 7x1
        return Branches(c(768, 192, 1),
                        nn.Sequential(c(768, c7, 1), c(c7, c7, (1, 7)), c(c7, 192, (7, 1))),
                        nn.Sequential(c(768, c7, 1), c(c7, c7, (7, 1)), c(c7, c7, (1, 7)), c(c7, c7, (7, 1)),
                                      c(c7, 192, (1, 7))),
                        pool_proj(768, 192))

    def block_e(i: int) -> nn.Module:  # 8x8, expanded filter bank (1x3 and 3x1 side by side)
        def fan(j: int) -> nn.Module:
            return Branches(c(j, 384, (1, 3)), c(j, 384, (3, 1)))

        return Branches(c(i, 320, 1), nn.Sequential(c(i, 384, 1), fan(384)),
                        nn.Sequential(c(i, 448, 1), c(448, 384, 3), fan(384)), pool_proj(i, 192))

    reduce_b = Branches(c(288, 384, 3, 2, pad=0), nn.Sequential(c(288, 64, 1), c(64, 96, 3), c(96, 96, 3, 2, pad=0)),
                        nn.MaxPool2d(3, 2))
    reduce_d = Branches(nn.Sequential(c(768, 192, 1), c(192, 320, 3, 2, pad=0)),
                        nn.Sequential(c(768, 192, 1), c(192, 192, (1, 7)), c(192, 192, (7, 1)),
                                      c(192, 192, 3, 2, pad=0)),
                        nn.MaxPool2d(3, 2))
    return nn.Sequential(
        c(3, 32, 3, 2, pad=0), c(32, 32, 3, pad=0), c(32, 64, 3), nn.MaxPool2d(3, 2),  # 299 -> 73
        c(64, 80, 1), c(80, 192, 3, pad=0), nn.MaxPool2d(3, 2),  # -> 35
        block_a(192, 32), block_a(256, 64), block_a(288, 64), reduce_b,  # -> 17x17x768
        block_c(128), block_c(160), block_c(160), block_c(192), reduce_d,  # -> 8x8x1280
        block_e(1280), block_e(2048), _classifier(2048))


# --------------------------------------------------------------------------- Xception
def _sep(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, no BN or activation between (Xception's separable conv)."""
    return nn.Sequential(nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False), nn.Conv2d(cin, cout, 1, bias=False))


class _XceptionBlock(nn.Module):
    """``reps`` x [ReLU -> separable conv -> BN] (+ max-pool /2) plus a 1x1-conv (strided) or identity skip."""

    def __init__(self, cin: int, cout: int, reps: int, stride: int, *, start_relu: bool = True,
                 grow_first: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(reps):
            if grow_first:
                i_c, o_c = (cin if i == 0 else cout), cout
            else:
                i_c, o_c = cin, (cout if i == reps - 1 else cin)
            if i > 0 or start_relu:
                layers.append(nn.ReLU())
            layers += [_sep(i_c, o_c), nn.BatchNorm2d(o_c)]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rep(x) + self.skip(x)


def build_xception() -> nn.Module:
    """Chollet 2017, Figure 5: entry flow (3 strided blocks), middle flow (8 x 728), exit flow."""
    return nn.Sequential(
        cba(3, 32, 3, 2, pad=0), cba(32, 64, 3, pad=0),  # 299 -> 149 -> 147
        _XceptionBlock(64, 128, 2, 2, start_relu=False), _XceptionBlock(128, 256, 2, 2), _XceptionBlock(256, 728, 2, 2),
        *[_XceptionBlock(728, 728, 3, 1) for _ in range(8)],
        _XceptionBlock(728, 1024, 2, 2, grow_first=False),
        _sep(1024, 1536), nn.BatchNorm2d(1536), nn.ReLU(), _sep(1536, 2048), nn.BatchNorm2d(2048), nn.ReLU(),
        _classifier(2048))


# --------------------------------------------------------------------------- ResNet-style bottlenecks
def _projection(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


def _resnet_stem() -> nn.Sequential:
    return nn.Sequential(cba(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))


class _SEBottleneck(nn.Module):
    """ResNet bottleneck 1x1 -> 3x3 (stride) -> 1x1 (x4), SE (reduction 16) on the branch before the sum."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = 4 * width
        self.branch = nn.Sequential(cba(cin, width, 1), cba(width, width, 3, stride), cba(width, cout, 1, a="none"))
        self.se = SqueezeExcite(cout, cout // 16, "relu", "sigmoid")
        self.short = _projection(cin, cout, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.se(self.branch(x)) + self.short(x))


class _Res2Bottleneck(nn.Module):
    """Res2Net bottleneck (Gao et al., Figure 2): 1x1 -> split in ``scale`` groups of ``w`` channels,
    y1 = K1(x1), y_i = K_i(x_i + y_{i-1}), the last group passed through -> concat -> 1x1 (x4).
    The first block of a stage has no hierarchical sums and average-pools the passed-through group."""

    def __init__(self, cin: int, planes: int, stride: int, first: bool, base_width: int = 26, scale: int = 4) -> None:
        super().__init__()
        w = planes * base_width // 64
        self.w, self.first = w, first
        self.reduce = cba(cin, w * scale, 1)
        self.convs = nn.ModuleList(cba(w, w, 3, stride) for _ in range(scale - 1))
        self.pool = nn.AvgPool2d(3, stride, 1) if first else nn.Identity()
        self.expand = cba(w * scale, 4 * planes, 1, a="none")
        self.short = _projection(cin, 4 * planes, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = torch.split(self.reduce(x), self.w, dim=1)
        ys: list[torch.Tensor] = []
        for i, conv in enumerate(self.convs):
            ys.append(conv(xs[i] if i == 0 or self.first else xs[i] + ys[-1]))
        ys.append(self.pool(xs[-1]))
        return self.relu(self.expand(torch.cat(ys, dim=1)) + self.short(x))


def _resnet50_like(block: type[nn.Module], **kw: object) -> nn.Module:
    layers: list[nn.Module] = [_resnet_stem()]
    cin = 64
    for si, (width, depth) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for b in range(depth):
            stride = 2 if b == 0 and si > 0 else 1
            if block is _Res2Bottleneck:
                layers.append(block(cin, width, stride, b == 0, **kw))
            else:
                layers.append(block(cin, width, stride, **kw))
            cin = 4 * width
    layers.append(_classifier(cin))
    return nn.Sequential(*layers)


def build_se_resnet50() -> nn.Module:
    """Hu et al. 2018, Table 1 (SE-ResNet-50): ResNet-50 with an SE gate (r = 16) in every bottleneck."""
    return _resnet50_like(_SEBottleneck)


def build_res2net50() -> nn.Module:
    """Gao et al. 2019, Res2Net-50 26w x 4s: ResNet-50 layout with Res2Net bottlenecks."""
    return _resnet50_like(_Res2Bottleneck, base_width=26, scale=4)


# --------------------------------------------------------------------------- DLA-34
class _DlaBasic(nn.Module):
    """Basic residual block; the residual comes from the enclosing tree (its projection) when given."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(cba(cin, cout, 3, stride), cba(cout, cout, 3, a="none"))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return self.relu(self.body(x) + (x if residual is None else residual))


class _DlaRoot(nn.Module):
    """Aggregation node: concat children -> 1x1 conv -> BN -> ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = cba(cin, cout, 1)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat(xs, dim=1))


class _DlaTree(nn.Module):
    """Hierarchical deep aggregation (Yu et al. 2018, Figure 2/3): a tree of ``levels`` whose leaves are basic
    blocks and whose aggregation nodes also take the previous trees' outputs (iterative aggregation through
    ``level_root``: the stage input joins the root)."""

    def __init__(self, levels: int, cin: int, cout: int, stride: int = 1, *, level_root: bool = False,
                 root_dim: int = 0) -> None:
        super().__init__()
        if root_dim == 0:
            root_dim = 2 * cout + (cin if level_root else 0)
        self.levels, self.level_root = levels, level_root
        if levels == 1:
            self.tree1: nn.Module = _DlaBasic(cin, cout, stride)
            self.tree2: nn.Module = _DlaBasic(cout, cout, 1)
            self.root = _DlaRoot(root_dim, cout)
        else:
            self.tree1 = _DlaTree(levels - 1, cin, cout, stride)
            self.tree2 = _DlaTree(levels - 1, cout, cout, 1, root_dim=root_dim + cout)
        self.down = nn.MaxPool2d(stride, stride) if stride > 1 else nn.Identity()
        self.project = (nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
                        if cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None,
                children: list[torch.Tensor] | None = None) -> torch.Tensor:
        children = [] if children is None else children
        bottom = self.down(x)
        residual = self.project(bottom)
        if self.level_root:
            children.append(bottom)
        x1 = self.tree1(x, residual)
        if self.levels == 1:
            return self.root(self.tree2(x1), x1, *children)
        children.append(x1)
        return self.tree2(x1, children=children)


def build_dla34() -> nn.Module:
    """Yu et al. 2018, DLA-34: levels (1, 1, 1, 2, 2, 1), channels (16, 32, 64, 128, 256, 512), basic blocks."""
    return nn.Sequential(
        cba(3, 16, 7), cba(16, 16, 3), cba(16, 32, 3, 2),  # base layer, level 0, level 1
        _DlaTree(1, 32, 64, 2), _DlaTree(2, 64, 128, 2, level_root=True),
        _DlaTree(2, 128, 256, 2, level_root=True), _DlaTree(1, 256, 512, 2, level_root=True),
        nn.AdaptiveAvgPool2d(1), nn.Conv2d(512, NUM_CLASSES, 1), nn.Flatten())


# --------------------------------------------------------------------------- CSPDarkNet-53
class _DarkBlock(nn.Module):
    """Darknet residual: 1x1 (c -> mid) -> 3x3 (mid -> c) + x, leaky ReLU."""

    def __init__(self, c: int, mid: int) -> None:
        super().__init__()
        self.body = nn.Sequential(cba(c, mid, 1, a="leaky"), cba(mid, c, 3, a="leaky"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _CSPStage(nn.Module):
    """Cross-stage partial stage (Wang et al. 2020, Figure 3(b)): strided 3x3 down-sampling, a 1x1 conv whose
    output is split in two halves; one half goes through the Darknet blocks and a 1x1 transition, the other
    skips them; concat -> 1x1 transition. The first stage doubles the split width (Darknet53's 64-channel stage)."""

    def __init__(self, cin: int, cout: int, depth: int, first: bool) -> None:
        super().__init__()
        exp = 2 * cout if first else cout
        self.half = half = exp // 2
        self.down = cba(cin, cout, 3, 2, a="leaky")
        self.exp = cba(cout, exp, 1, a="leaky")
        self.blocks = nn.Sequential(*[_DarkBlock(half, half // 2 if first else half) for _ in range(depth)])
        self.trans_b = cba(half, half, 1, a="leaky")
        self.trans = cba(exp, cout, 1, a="leaky")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.exp(self.down(x))
        a, b = x[:, :self.half], x[:, self.half:]
        return self.trans(torch.cat([a, self.trans_b(self.blocks(b))], dim=1))


def build_cspdarknet53() -> nn.Module:
    """Wang et al. 2020 (CSPNet), CSPDarknet53: Darknet-53's stages (1, 2, 8, 8, 4 residual blocks) made
    cross-stage partial."""
    layers: list[nn.Module] = [cba(3, 32, 3, a="leaky")]
    cin = 32
    for i, (cout, depth) in enumerate(zip((64, 128, 256, 512, 1024), (1, 2, 8, 8, 4))):
        layers.append(_CSPStage(cin, cout, depth, first=i == 0))
        cin = cout
    layers.append(_classifier(cin))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- DPN-68
def _bn_relu_conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(cin, eps=1e-3), nn.ReLU(),
                         nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False))


class _DualPathBlock(nn.Module):
    """Chen et al. 2017, Figure 2(e): a pre-activation grouped bottleneck whose output is split into a residual
    part (added to the residual path, ``bw`` channels) and a dense part (``inc`` channels concatenated to the
    densely connected path). The first block of a stage projects the input into both paths."""

    def __init__(self, cin: int, r: int, bw: int, inc: int, groups: int, kind: str) -> None:
        super().__init__()
        self.bw = bw
        stride = 2 if kind == "down" else 1
        self.proj = _bn_relu_conv(cin, bw + 2 * inc, 1, stride) if kind != "normal" else None
        self.body = nn.Sequential(_bn_relu_conv(cin, r, 1), _bn_relu_conv(r, r, 3, stride, groups),
                                  _bn_relu_conv(r, bw + inc, 1))

    def forward(self, x: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x_in = torch.cat(x, dim=1)
        if self.proj is not None:
            s = self.proj(x_in)
            s1, s2 = s[:, :self.bw], s[:, self.bw:]
        else:
            s1, s2 = x
        out = self.body(x_in)
        return s1 + out[:, :self.bw], torch.cat([s2, out[:, self.bw:]], dim=1)


class _DPN(nn.Module):
    def __init__(self, init: int = 10, k_r: int = 128, groups: int = 32, k_sec: Sequence[int] = (3, 4, 12, 3),
                 inc_sec: Sequence[int] = (16, 32, 32, 64)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, init, 3, 2, 1, bias=False), nn.BatchNorm2d(init, eps=1e-3), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks: list[nn.Module] = []
        cin = init
        for si, (n, inc) in enumerate(zip(k_sec, inc_sec)):
            bw = 64 * 2 ** si
            r = k_r * bw // 64
            for b in range(n):
                kind = ("proj" if si == 0 else "down") if b == 0 else "normal"
                blocks.append(_DualPathBlock(cin, r, bw, inc, groups, kind))
                cin = bw + inc * (b + 3)  # residual path + dense path after block b
        self.blocks = nn.ModuleList(blocks)
        self.post = nn.Sequential(nn.BatchNorm2d(cin, eps=1e-3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Conv2d(cin, NUM_CLASSES, 1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        y: tuple[torch.Tensor, ...] = (s,)
        for blk in self.blocks:
            y = blk(y)
        return self.post(torch.cat(y, dim=1))


def build_dpn68() -> nn.Module:
    """Chen et al. 2017, DPN-68 (Table 1): 3x3 stem of 10 channels, k_R = 128, G = 32, (3, 4, 12, 3) blocks,
    dense increments (16, 32, 32, 64)."""
    return _DPN()


# --------------------------------------------------------------------------- MixNet-S
def _split(total: int, n: int) -> list[int]:
    s = [total // n] * n
    s[0] += total - sum(s)
    return s


class _MixConv(nn.Module):
    """MixConv (Tan & Le 2019): channels split in equal groups, each a depthwise conv of its own kernel size."""

    def __init__(self, c: int, kernels: Sequence[int], stride: int) -> None:
        super().__init__()
        self.splits = _split(c, len(kernels))
        self.convs = nn.ModuleList(nn.Conv2d(s, s, k, stride, k // 2, groups=s, bias=False)
                                   for s, k in zip(self.splits, kernels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.convs) == 1:
            return self.convs[0](x)
        return torch.cat([conv(part) for conv, part in zip(self.convs, torch.split(x, self.splits, dim=1))], dim=1)


class _MixBlock(nn.Module):
    """MBConv with a MixConv depthwise stage and (grouped) 1x1 convs; SE squeeze relative to the block input."""

    def __init__(self, cin: int, cout: int, kernels: Sequence[int], stride: int, expand: int, exp_groups: int,
                 proj_groups: int, se: float, a: str) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = cba(cin, mid, 1, groups=exp_groups, a=a, eps=1e-3) if expand != 1 else nn.Identity()
        self.dw = nn.Sequential(_MixConv(mid, kernels, stride), nn.BatchNorm2d(mid, eps=1e-3), _act(a))
        self.se = SqueezeExcite(mid, max(1, int(cin * se)), a, "sigmoid") if se else nn.Identity()
        self.project = cba(mid, cout, 1, groups=proj_groups, a="none", eps=1e-3)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(self.se(self.dw(self.expand(x))))
        return x + h if self.residual else h


# (repeats, kernels, expand groups, project groups, stride, expansion, in, out, SE ratio, swish) -- MixNet-S, Fig. 8
_MIXNET_S = (
    (1, (3,), 1, 1, 1, 1, 16, 16, 0.0, False),
    (1, (3,), 2, 2, 2, 6, 16, 24, 0.0, False),
    (1, (3,), 2, 2, 1, 3, 24, 24, 0.0, False),
    (1, (3, 5, 7), 1, 1, 2, 6, 24, 40, 0.5, True),
    (3, (3, 5), 2, 2, 1, 6, 40, 40, 0.5, True),
    (1, (3, 5, 7), 1, 1, 2, 6, 40, 80, 0.25, True),
    (2, (3, 5), 1, 2, 1, 6, 80, 80, 0.25, True),
    (1, (3, 5, 7), 2, 2, 1, 6, 80, 120, 0.5, True),
    (2, (3, 5, 7, 9), 2, 2, 1, 3, 120, 120, 0.5, True),
    (1, (3, 5, 7, 9, 11), 1, 1, 2, 6, 120, 200, 0.5, True),
    (2, (3, 5, 7, 9), 1, 2, 1, 6, 200, 200, 0.5, True),
)


def build_mixnet_s() -> nn.Module:
    """Tan & Le 2019 (MixConv), MixNet-S: stem 3x3/2 (16), the block table above, 1x1 head conv (1536)."""
    layers: list[nn.Module] = [cba(3, 16, 3, 2, eps=1e-3)]
    for reps, ks, ga, gp, s, e, ci, co, se, sw in _MIXNET_S:
        for r in range(reps):
            layers.append(_MixBlock(ci if r == 0 else co, co, ks, s if r == 0 else 1, e, ga, gp, se,
                                    "swish" if sw else "relu"))
    layers += [cba(200, 1536, 1, eps=1e-3), _classifier(1536)]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- EfficientNetV2-S
class _MBConv(nn.Module):
    """MBConv (1x1 expand -> depthwise 3x3 -> SE -> 1x1) or Fused-MBConv (3x3 expand -> [1x1]), SiLU."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int, fused: bool, se: float) -> None:
        super().__init__()
        mid = cin * expand
        if fused:
            if expand == 1:  # a single 3x3 conv
                self.body = cba(cin, cout, 3, stride, a="swish", eps=1e-3)
            else:
                self.body = nn.Sequential(cba(cin, mid, 3, stride, a="swish", eps=1e-3),
                                          cba(mid, cout, 1, a="none", eps=1e-3))
        else:
            self.body = nn.Sequential(
                cba(cin, mid, 1, a="swish", eps=1e-3), cba(mid, mid, 3, stride, groups=mid, a="swish", eps=1e-3),
                SqueezeExcite(mid, max(1, int(cin * se)), "swish", "sigmoid"), cba(mid, cout, 1, a="none", eps=1e-3))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return x + h if self.residual else h


# (fused, expansion, stride, channels, layers, SE ratio) -- EfficientNetV2-S, Table 4
_EFFNETV2_S = ((True, 1, 1, 24, 2, 0.0), (True, 4, 2, 48, 4, 0.0), (True, 4, 2, 64, 4, 0.0),
               (False, 4, 2, 128, 6, 0.25), (False, 6, 1, 160, 9, 0.25), (False, 6, 2, 256, 15, 0.25))


def build_efficientnetv2_s() -> nn.Module:
    """Tan & Le 2021, EfficientNetV2-S (Table 4): Fused-MBConv early stages, MBConv + SE later, 1280 head."""
    layers: list[nn.Module] = [cba(3, 24, 3, 2, a="swish", eps=1e-3)]
    cin = 24
    for fused, e, s, c, n, se in _EFFNETV2_S:
        for i in range(n):
            layers.append(_MBConv(cin, c, e, s if i == 0 else 1, fused, se))
            cin = c
    layers += [cba(cin, 1280, 1, a="swish", eps=1e-3), _classifier(1280)]
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- MobileNetV1
def build_mobilenet_v1() -> nn.Module:
    """Howard et al. 2017, Table 1 (width 1.0): 3x3/2 conv then 13 depthwise-separable blocks."""
    plan = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1))
    layers: list[nn.Module] = [cba(3, 32, 3, 2)]
    cin = 32
    for cout, s in plan:
        layers += [cba(cin, cin, 3, s, groups=cin), cba(cin, cout, 1)]
        cin = cout
    layers.append(_classifier(cin))
    return nn.Sequential(*layers)
