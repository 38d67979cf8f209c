"""Modern model families: vision transformers and their kin, a selective state-space language model,
CNNs with unusual normalisation/activation, and graph neural networks.

Registered families (``FAMILIES``): ``vit``, ``convnext``, ``swin``, ``mlpmixer``, ``mamba``,
``bcn_cnn``, ``linosc_cnn``, ``gcn``, ``graphsage``.

Sampling. Each family draws a *target cost* log-uniformly between ``macs_range`` (multiply-adds,
estimated analytically by :meth:`ModernFamily.estimate_macs`) and then draws configs until one lands
within a factor ``_TOLERANCE`` of it (the closest one after ``_MAX_TRIES``). This spreads a family's
variants evenly over about two orders of magnitude of cost (hence CPU latency) instead of piling
them up at the median, and caps the largest variant (it must export in < 3 s and run in ~150 ms on
one CPU thread). Everything is drawn from the family's seeded ``rng``, so a seed always gives the
same config.

All networks are plain torch (no torchvision, no ``nn.MultiheadAttention``: attention is written as
Linear/MatMul/Softmax so the ONNX graph shows every operator). The torch modules are defined in
:func:`_layers` on first use: importing this module (which ``get_family`` does to list the
families) does not import torch.
"""

from __future__ import annotations

import functools
import math
from abc import abstractmethod
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from archcast.zoo.base import FAMILIES, Family

_TOLERANCE = 1.25  # accept a draw whose MACs are within this factor of the target
_MAX_TRIES = 400


def _choice(rng: np.random.Generator, options: list[Any]) -> Any:
    """One of ``options`` as a plain Python value (JSON-safe, unlike numpy scalars)."""
    value = options[int(rng.integers(len(options)))]
    return value.item() if isinstance(value, np.generic) else value


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    """An int in ``[low, high]`` (both inclusive)."""
    return int(rng.integers(low, high + 1))


class ModernFamily(Family):
    """A family sampled by cost-targeted rejection (see the module docstring).

    Subclasses implement :meth:`draw` (one unconstrained config), :meth:`estimate_macs` and
    :meth:`tiny_config` (the smallest meaningful config, for fast tests), and set ``macs_range``.
    """

    macs_range: ClassVar[tuple[float, float]] = (1e7, 1e9)

    @abstractmethod
    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """One config drawn from the family's space, ignoring cost."""

    @classmethod
    @abstractmethod
    def estimate_macs(cls, config: dict[str, Any]) -> float:
        """Multiply-adds of one forward pass at batch 1 (main terms only: matmuls, convs)."""

    @classmethod
    @abstractmethod
    def tiny_config(cls) -> dict[str, Any]:
        """A very small valid config: builds and exports in well under a second."""

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        lo, hi = (math.log(v) for v in self.macs_range)
        target = rng.uniform(lo, hi)
        best, best_gap = None, math.inf
        for _ in range(_MAX_TRIES):
            config = self.draw(rng)
            macs = self.estimate_macs(config)
            if macs > self.macs_range[1]:
                continue  # never exceed the cap, even as a fallback
            gap = abs(math.log(macs) - target)
            if gap < best_gap:
                best, best_gap = config, gap
            if gap <= math.log(_TOLERANCE):
                break
        if best is None:
            raise RuntimeError(f"family {self.name!r}: no draw under macs_range {self.macs_range} "
                               f"in {_MAX_TRIES} tries; the space or the cap is wrong")
        return best


def _image(config: dict[str, Any], batch_size: int) -> Any:
    """A seeded example image batch ``[B, 3, S, S]`` for ``config["image_size"]`` = S."""
    torch = _layers().torch
    s = config["image_size"]
    return torch.randn(batch_size, 3, s, s, generator=torch.Generator().manual_seed(0))


# ============================================================================ vision transformers
def _patch_options(image_size: int, patches: list[int], max_tokens: int = 784) -> list[int]:
    return [p for p in patches if image_size % p == 0 and 9 <= (image_size // p) ** 2 <= max_tokens]


@FAMILIES.register("vit")
class ViTFamily(ModernFamily):
    """ViT/DeiT: patch-embedding conv, class (+ optional distillation) token, learned position
    embedding, pre-LN encoder with explicit multi-head attention and a GELU MLP."""

    name = "vit"
    input_kind = "image"
    version = "1"
    description = "ViT/DeiT image transformer: patch conv, cls/distill tokens, pre-LN explicit attention, GELU MLP"
    macs_range = (1.5e7, 3e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        image_size = _choice(rng, [96, 112, 128, 160, 192, 224])
        embed_dim = _choice(rng, [64, 96, 128, 192, 256, 320, 384, 448, 512])
        head_dim = _choice(rng, [h for h in (32, 64) if embed_dim % h == 0])
        return {
            "image_size": image_size,
            "patch_size": _choice(rng, _patch_options(image_size, [8, 14, 16, 32])),
            "embed_dim": embed_dim,
            "num_heads": embed_dim // head_dim,
            "depth": _int(rng, 2, 12),
            "mlp_ratio": _choice(rng, [2.0, 3.0, 4.0]),
            "qkv_bias": bool(rng.random() < 0.8),
            "distill_token": bool(rng.random() < 0.3),
            "num_classes": _choice(rng, [10, 100, 1000]),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        p, d = c["patch_size"], c["embed_dim"]
        grid = (c["image_size"] // p) ** 2
        n = grid + 1 + int(c["distill_token"])
        block = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * int(d * c["mlp_ratio"])
        return grid * 3 * p * p * d + c["depth"] * block + (1 + int(c["distill_token"])) * d * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "patch_size": 8, "embed_dim": 32, "num_heads": 2, "depth": 1,
                "mlp_ratio": 2.0, "qkv_bias": True, "distill_token": True, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return _layers().ViT(config), (_image(config, batch_size),)


@FAMILIES.register("convnext")
class ConvNeXtFamily(ModernFamily):
    """ConvNeXt: patchify stem, four stages of (depthwise k×k conv, LayerNorm over channels,
    inverted MLP, layer scale, residual), LayerNorm + stride-2 conv between stages."""

    name = "convnext"
    input_kind = "image"
    version = "1"
    description = "ConvNeXt: depthwise 7x7 conv, channel LayerNorm, inverted GELU MLP, layer scale; 4 stages"
    macs_range = (2e7, 2e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        base = _choice(rng, [24, 32, 40, 48, 64, 80, 96])
        return {
            "image_size": _choice(rng, [96, 128, 160, 192, 224]),
            "widths": [base, 2 * base, 4 * base, 8 * base],
            "depths": [_int(rng, 1, 3), _int(rng, 1, 3), _int(rng, 1, 9), _int(rng, 1, 3)],
            # 7x7 is ConvNeXt's choice; smaller kernels show up as in ablations
            "kernel_sizes": [_choice(rng, [3, 5, 7, 7, 7]) for _ in range(4)],
            "mlp_ratio": _choice(rng, [2, 3, 4]),
            "layer_scale_init": 1e-6,
            "num_classes": _choice(rng, [10, 100, 1000]),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        res = c["image_size"] // 4
        macs = res * res * 3 * 16 * c["widths"][0]
        for i, (w, d, k) in enumerate(zip(c["widths"], c["depths"], c["kernel_sizes"])):
            if i:
                res //= 2
                macs += res * res * c["widths"][i - 1] * 4 * w
            macs += d * res * res * (w * k * k + 2 * w * w * c["mlp_ratio"])
        return macs + c["widths"][-1] * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "widths": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "kernel_sizes": [7, 7, 3, 3],
                "mlp_ratio": 2, "layer_scale_init": 1e-6, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return _layers().ConvNeXt(config), (_image(config, batch_size),)


@FAMILIES.register("swin")
class SwinFamily(ModernFamily):
    """Swin transformer: 4×4 patch embedding, stages of window attention (window 7) alternating
    with shifted windows (``torch.roll`` + attention mask), relative position bias, patch merging.
    Image 224 has four stages (56→7 tokens a side), image 112 three (28→7)."""

    name = "swin"
    input_kind = "image"
    version = "1"
    description = "Swin transformer: (shifted) 7x7 window attention with relative position bias, patch merging"
    macs_range = (5e6, 2.5e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        image_size = _choice(rng, [112, 224])
        stages = 4 if image_size == 224 else 3
        embed_dim = _choice(rng, [16, 24, 32, 48, 64, 96])
        depths = [_choice(rng, [1, 2]) for _ in range(stages)]
        depths[2] = _choice(rng, [1, 2, 4, 6])  # the deep stage, as in Swin-T/S
        return {
            "image_size": image_size,
            "patch_size": 4,
            "window_size": 7,
            "embed_dim": embed_dim,
            "depths": depths,
            "head_dim": _choice(rng, [h for h in (8, 16, 32) if embed_dim % h == 0 and embed_dim // h <= 4]),
            "mlp_ratio": _choice(rng, [2.0, 4.0]),
            "relative_position_bias": bool(rng.random() < 0.8),
            "num_classes": _choice(rng, [10, 100, 1000]),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        res = c["image_size"] // c["patch_size"]
        dim = c["embed_dim"]
        macs = res * res * 3 * c["patch_size"] ** 2 * dim
        for i, depth in enumerate(c["depths"]):
            if i:
                macs += (res // 2) ** 2 * 4 * dim * 2 * dim
                res, dim = res // 2, dim * 2
            n, win = res * res, min(c["window_size"], res) ** 2
            macs += depth * (4 * n * dim * dim + 2 * n * win * dim + 2 * n * dim * int(dim * c["mlp_ratio"]))
        return macs + dim * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        # 56 px → 14 tokens a side: stage 1 has two windows a side, so the shifted block needs its mask
        return {"image_size": 56, "patch_size": 4, "window_size": 7, "embed_dim": 16, "depths": [2, 1],
                "head_dim": 8, "mlp_ratio": 2.0, "relative_position_bias": True, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return _layers().Swin(config), (_image(config, batch_size),)


@FAMILIES.register("mlpmixer")
class MLPMixerFamily(ModernFamily):
    """MLP-Mixer: patch-embedding conv, blocks of token-mixing MLP (across patches) and
    channel-mixing MLP (across features), each pre-LN with a residual; mean-pool head."""

    name = "mlpmixer"
    input_kind = "image"
    version = "1"
    description = "MLP-Mixer: patch conv, token-mixing and channel-mixing GELU MLPs, pre-LN residual blocks"
    macs_range = (1e7, 3e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        image_size = _choice(rng, [96, 112, 128, 160, 192, 224])
        return {
            "image_size": image_size,
            "patch_size": _choice(rng, _patch_options(image_size, [8, 14, 16, 32])),
            "hidden_dim": _choice(rng, [64, 128, 192, 256, 384, 512]),
            "token_mlp_dim": _choice(rng, [32, 64, 128, 256, 384]),
            "channel_mlp_ratio": _choice(rng, [2, 3, 4]),
            "depth": _int(rng, 2, 12),
            "num_classes": _choice(rng, [10, 100, 1000]),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        p, d = c["patch_size"], c["hidden_dim"]
        t = (c["image_size"] // p) ** 2
        block = 2 * d * t * c["token_mlp_dim"] + 2 * t * d * d * c["channel_mlp_ratio"]
        return t * 3 * p * p * d + c["depth"] * block + d * c["num_classes"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"image_size": 32, "patch_size": 8, "hidden_dim": 32, "token_mlp_dim": 16, "channel_mlp_ratio": 2,
                "depth": 1, "num_classes": 10}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        return _layers().MLPMixer(config), (_image(config, batch_size),)


# ============================================================================ state-space LM
@FAMILIES.register("mamba")
class MambaFamily(ModernFamily):
    """A Mamba-style selective state-space language model (token ids in, next-token logits out).

    Block (pre-RMSNorm, residual): in-proj → depthwise causal conv1d + SiLU over (x, B, C) →
    input-dependent step ``dt = softplus(·)`` → selective scan → ``+ D·x`` → gate ``· SiLU(z)`` →
    RMSNorm → out-proj. The scan has a scalar decay per head (the Mamba-2 / SSD form) and is
    computed in chunks, in closed form: inside a chunk as a masked decay matrix built from a
    cumulative sum of log-decays, across chunks by passing chunk states through a second decay
    matrix. No loops, so it exports to plain MatMul/CumSum/Exp/Where ONNX and stays fast to export.
    """

    name = "mamba"
    input_kind = "tokens"
    version = "1"
    description = "Mamba-style selective SSM LM: causal conv1d, chunked closed-form selective scan, SiLU gate, RMSNorm"
    macs_range = (5e6, 1.5e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        seq_len = _choice(rng, [64, 128, 256, 512])
        d_model = _choice(rng, [64, 96, 128, 192, 256, 384, 512])
        expand = _choice(rng, [1, 2])
        d_inner = expand * d_model
        return {
            "vocab_size": _choice(rng, [256, 1024, 2048, 4096, 8192]),
            "seq_len": seq_len,
            "d_model": d_model,
            "n_layers": _int(rng, 2, 8),  # ~80 ONNX nodes a layer: deeper stacks near the 3 s export budget
            "expand": expand,
            "head_dim": _choice(rng, [h for h in (16, 32, 64) if d_inner % h == 0]),
            "d_state": _choice(rng, [16, 32, 64]),
            "d_conv": _choice(rng, [2, 3, 4]),
            "chunk_size": min(seq_len, _choice(rng, [32, 64, 128])),
            "tie_embeddings": bool(rng.random() < 0.5),
        }

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        seq, d, n, q = c["seq_len"], c["d_model"], c["d_state"], c["chunk_size"]
        di = c["expand"] * d
        heads = di // c["head_dim"]
        proj = seq * d * (2 * di + 2 * n + heads) + seq * di * d
        conv = seq * (di + 2 * n) * c["d_conv"]
        scan = seq * q * n + seq * q * di + 2 * seq * n * di
        return c["n_layers"] * (proj + conv + scan) + seq * d * c["vocab_size"]

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"vocab_size": 64, "seq_len": 16, "d_model": 16, "n_layers": 1, "expand": 2, "head_dim": 8,
                "d_state": 4, "d_conv": 4, "chunk_size": 8, "tie_embeddings": True}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        layers = _layers()
        gen = layers.torch.Generator().manual_seed(0)
        ids = layers.torch.randint(0, config["vocab_size"], (batch_size, config["seq_len"]), generator=gen)
        return layers.MambaLM(config), (ids,)


# ============================================================================ CNNs with odd ops
def _conv_plan(c: dict[str, Any]) -> list[tuple[int, int, int, int, int]]:
    """The blocks of a ``ConvNet`` config (see :func:`_layers`): ``(in_ch, out_ch, stride, kernel, in_res)`` each."""
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
    image_size = _choice(rng, [32, 64, 96, 128, 160, 224])
    n_stages = _int(rng, 2, 4)
    width = _choice(rng, [16, 24, 32, 48, 64])
    widths = []
    for _ in range(n_stages):
        widths.append(width)
        width = int(round(width * _choice(rng, [1.5, 2.0]) / 8) * 8)
    block_type = _choice(rng, ["basic", "inverted"])
    return {
        "image_size": image_size,
        "stem_channels": _choice(rng, [16, 24, 32]),
        "stem_stride": 1 if image_size <= 64 else 2,
        "block_type": block_type,
        "expand_ratio": _choice(rng, [2, 4, 6]) if block_type == "inverted" else 1,  # 1: unused
        "widths": widths,
        "blocks": [_int(rng, 1, 3) for _ in range(n_stages)],
        "strides": [_choice(rng, [1, 2])] + [2] * (n_stages - 1),
        "kernel_sizes": [_choice(rng, [3, 3, 5]) for _ in range(n_stages)],
        "num_classes": _choice(rng, [10, 100, 1000]),
    }


_TINY_CONVNET = {"image_size": 16, "stem_channels": 8, "stem_stride": 1, "block_type": "basic", "expand_ratio": 1,
                 "widths": [8, 16], "blocks": [1, 1], "strides": [1, 2], "kernel_sizes": [3, 3], "num_classes": 10}


@FAMILIES.register("bcn_cnn")
class BCNConvNetFamily(ModernFamily):
    """A CNN normalised by Batch-Channel Normalization: ``γ·(α·BN(x) + (1−α)·LN(x)) + β`` with a
    learned per-channel mix α, where BN standardises over (N, H, W) and LN over (C, H, W). Written in
    plain ops (ReduceMean/Sub/Pow/Sqrt/Div...), so nothing folds into the convolutions.

    ``bn_stats="batch"`` computes the BN statistics from the input at inference too;
    ``"running"`` uses stored running statistics (then only the LN half is data-dependent).
    """

    name = "bcn_cnn"
    input_kind = "image"
    version = "1"
    description = "CNN with Batch-Channel Normalization (learned mix of batch and channel statistics) in plain ops"
    macs_range = (5e6, 2e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        config = _draw_convnet(rng)
        config["bn_stats"] = _choice(rng, ["batch", "running"])
        config["activation"] = _choice(rng, ["relu", "silu"])
        return config

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        return _conv_macs(c)

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {**_TINY_CONVNET, "bn_stats": "batch", "activation": "relu"}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        layers = _layers()
        norm = functools.partial(layers.BatchChannelNorm2d, stats=config["bn_stats"])
        act = layers.torch.nn.ReLU if config["activation"] == "relu" else layers.torch.nn.SiLU
        return layers.ConvNet(config, norm, lambda c: act()), (_image(config, batch_size),)


@FAMILIES.register("linosc_cnn")
class LinOscConvNetFamily(ModernFamily):
    """A CNN (BatchNorm, folded at export) whose activations are Linear Oscillation,
    ``x·sin(α·x + β)`` with α, β learned per channel or as one scalar pair per layer."""

    name = "linosc_cnn"
    input_kind = "image"
    version = "1"
    description = "CNN with Linear Oscillation activations x*sin(alpha*x+beta), learned alpha/beta"
    macs_range = (5e6, 9e8)  # Sin is costly per element: up to ~60 ms/GFLOP on one thread

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        config = _draw_convnet(rng)
        config["linosc_params"] = _choice(rng, ["channel", "scalar"])
        return config

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        return _conv_macs(c)

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {**_TINY_CONVNET, "block_type": "inverted", "expand_ratio": 2, "linosc_params": "channel"}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        layers = _layers()
        per_channel = config["linosc_params"] == "channel"

        def act(c: int) -> Any:
            return layers.LinOsc(c if per_channel else 1)

        return layers.ConvNet(config, layers.torch.nn.BatchNorm2d, act), (_image(config, batch_size),)


# ============================================================================ graph neural networks
class GraphFamily(ModernFamily):
    """Node classification on one graph given as dense inputs: node features ``[N, F]`` and a
    normalised adjacency ``[N, N]`` (float). With ``batch_size > 1`` both get a leading batch dim.

    The example graph is a seeded random sparse graph (``graph_seed``, ``avg_degree``), symmetric,
    without self loops before normalisation; see :meth:`normalise`.
    """

    input_kind = "graph"

    def draw_graph(self, rng: np.random.Generator) -> dict[str, Any]:
        return {
            "num_nodes": int(round(math.exp(rng.uniform(math.log(100), math.log(2000))))),
            "in_features": _choice(rng, [16, 32, 64, 128, 256, 512]),
            "hidden": _choice(rng, [16, 32, 64, 128, 256]),
            "num_layers": _int(rng, 2, 4),
            "num_classes": _choice(rng, [2, 4, 7, 16, 40, 64]),
            "activation": _choice(rng, ["relu", "elu"]),
            "log_softmax": bool(rng.random() < 0.5),
            "avg_degree": _choice(rng, [2, 4, 8, 16]),
            "graph_seed": int(rng.integers(2**31 - 1)),
        }

    @classmethod
    def layer_dims(cls, c: dict[str, Any]) -> list[tuple[int, int]]:
        dims = [c["in_features"]] + [c["hidden"]] * (c["num_layers"] - 1) + [c["num_classes"]]
        return list(zip(dims[:-1], dims[1:]))

    @staticmethod
    @abstractmethod
    def normalise(adj: Any) -> Any:
        """The model's adjacency input from a 0/1 symmetric ``adj`` without self loops."""

    @abstractmethod
    def model(self, config: dict[str, Any]) -> Any:
        """The torch module for ``config``."""

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        torch = _layers().torch
        n = config["num_nodes"]
        gen = torch.Generator().manual_seed(config["graph_seed"])
        n_edges = n * config["avg_degree"] // 2
        src = torch.randint(0, n, (n_edges,), generator=gen)
        dst = torch.randint(0, n, (n_edges,), generator=gen)
        adj = torch.zeros(n, n)
        adj[src, dst] = 1.0
        adj = torch.maximum(adj, adj.T).fill_diagonal_(0.0)
        adj = self.normalise(adj)
        x = torch.randn(n, config["in_features"], generator=gen)
        if batch_size != 1:
            x, adj = x.expand(batch_size, -1, -1).contiguous(), adj.expand(batch_size, -1, -1).contiguous()
        return self.model(config), (x, adj)


@FAMILIES.register("gcn")
class GCNFamily(GraphFamily):
    """GCN (Kipf & Welling): ``H' = act(Â·H·W + b)`` with ``Â = D^-1/2 (A + I) D^-1/2`` given as the
    adjacency input; optional residual on hidden→hidden layers."""

    name = "gcn"
    version = "1"
    description = "GCN on a dense normalised adjacency input: act(A_hat @ H @ W + b), 2-4 layers"
    macs_range = (1e6, 3e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        config = self.draw_graph(rng)
        config["residual"] = bool(rng.random() < 0.3) and config["num_layers"] > 2  # needs a hidden→hidden layer
        return config

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        n = c["num_nodes"]
        return sum(n * fi * fo + n * n * fo for fi, fo in cls.layer_dims(c))

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"num_nodes": 24, "in_features": 8, "hidden": 8, "num_layers": 3, "num_classes": 3,
                "activation": "relu", "log_softmax": True, "avg_degree": 4, "graph_seed": 0, "residual": True}

    @staticmethod
    def normalise(adj: Any) -> Any:
        a = adj + _layers().torch.eye(adj.shape[0])
        d = a.sum(1).rsqrt()
        return d[:, None] * a * d[None, :]

    def model(self, config: dict[str, Any]) -> Any:
        return _layers().GCN(config)


@FAMILIES.register("graphsage")
class GraphSAGEFamily(GraphFamily):
    """GraphSAGE with mean aggregation: ``H' = act(W·[H ‖ Ā·H] + b)`` where ``Ā = D^-1 A`` (row-mean
    over neighbours) is the adjacency input; optional L2 normalisation of hidden embeddings."""

    name = "graphsage"
    version = "1"
    description = "GraphSAGE-mean on a dense row-normalised adjacency: act(W [H || A_mean @ H]), 2-4 layers"
    macs_range = (1e6, 3e9)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        config = self.draw_graph(rng)
        config["normalize"] = bool(rng.random() < 0.5)
        return config

    @classmethod
    def estimate_macs(cls, c: dict[str, Any]) -> float:
        n = c["num_nodes"]
        return sum(n * n * fi + n * 2 * fi * fo for fi, fo in cls.layer_dims(c))

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"num_nodes": 24, "in_features": 8, "hidden": 8, "num_layers": 2, "num_classes": 3,
                "activation": "elu", "log_softmax": False, "avg_degree": 4, "graph_seed": 0, "normalize": True}

    @staticmethod
    def normalise(adj: Any) -> Any:
        return adj / adj.sum(1, keepdim=True).clamp(min=1.0)

    def model(self, config: dict[str, Any]) -> Any:
        return _layers().GraphSAGE(config)


# ============================================================================ torch modules
@functools.cache
def _layers() -> SimpleNamespace:
    """The torch modules of this file, defined on first use so that importing it stays torch-free."""
    import torch
    import torch.nn.functional as F
    from torch import nn

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

    class ViT(nn.Module):
        """``[B, 3, S, S] -> [B, classes]``. With a distillation token the two heads' logits are
        averaged (DeiT inference)."""

        def __init__(self, c: dict[str, Any]) -> None:
            super().__init__()
            d, p = c["embed_dim"], c["patch_size"]
            self.distill = c["distill_token"]
            prefix = 2 if self.distill else 1
            self.patch = nn.Conv2d(3, d, p, stride=p)
            self.tokens = nn.Parameter(torch.randn(1, prefix, d) * 0.02)  # class (+ distillation) token
            self.pos = nn.Parameter(torch.randn(1, (c["image_size"] // p) ** 2 + prefix, d) * 0.02)
            self.blocks = nn.Sequential(*[EncoderBlock(d, c["num_heads"], c["mlp_ratio"], c["qkv_bias"])
                                          for _ in range(c["depth"])])
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, c["num_classes"])
            self.head_dist = nn.Linear(d, c["num_classes"]) if self.distill else None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = patch_tokens(self.patch(x))  # [B, T, D]
            x = torch.cat([self.tokens.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            x = self.norm(self.blocks(x))
            if self.head_dist is None:
                return self.head(x[:, 0])
            return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2

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

    class ConvNeXtBlock(nn.Module):
        def __init__(self, dim: int, kernel: int, mlp_ratio: int, ls_init: float) -> None:
            super().__init__()
            self.dw = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = Mlp(dim, mlp_ratio * dim)
            self.gamma = nn.Parameter(torch.full((dim,), ls_init))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.dw(x).permute(0, 2, 3, 1)  # channels last: LayerNorm and the MLP act on C
            y = self.gamma * self.mlp(self.norm(y))
            return x + y.permute(0, 3, 1, 2)

    class ConvNeXt(nn.Module):
        def __init__(self, c: dict[str, Any]) -> None:
            super().__init__()
            w = c["widths"]
            layers: list[nn.Module] = [nn.Conv2d(3, w[0], 4, stride=4), LayerNorm2d(w[0])]
            for i, (dim, depth, k) in enumerate(zip(w, c["depths"], c["kernel_sizes"])):
                if i:
                    layers += [LayerNorm2d(w[i - 1]), nn.Conv2d(w[i - 1], dim, 2, stride=2)]
                layers += [ConvNeXtBlock(dim, k, c["mlp_ratio"], c["layer_scale_init"]) for _ in range(depth)]
            self.features = nn.Sequential(*layers)
            self.norm, self.head = nn.LayerNorm(w[-1], eps=1e-6), nn.Linear(w[-1], c["num_classes"])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.norm(self.features(x).mean((2, 3))))

    def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
        """``[B, H, W, C] -> [B·(H/ws)·(W/ws), ws², C]``"""
        b, h, w, c = x.shape
        x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, ws * ws, c)

    def window_merge(x: torch.Tensor, ws: int, b: int, h: int, w: int) -> torch.Tensor:
        """Inverse of :func:`window_partition`."""
        x = x.view(b, h // ws, w // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(b, h, w, -1)

    def shift_mask(res: int, ws: int, shift: int) -> torch.Tensor:
        """``[windows, ws², ws²]``: −100 between tokens that the cyclic shift brought together from
        different regions of the image, else 0."""
        region = torch.zeros(1, res, res, 1)
        cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
        for label, (rows, cols) in enumerate((r, c) for r in cuts for c in cuts):
            region[:, rows, cols] = label
        labels = window_partition(region, ws).squeeze(-1)  # [windows, ws²]
        differ = labels[:, :, None] != labels[:, None, :]
        return differ.float() * -100.0

    class SwinBlock(nn.Module):
        """Window attention on ``[B, res², C]``; ``shifted`` rolls the map by half a window first."""

        def __init__(self, dim: int, res: int, heads: int, window: int, shifted: bool, mlp_ratio: float,
                     rel_bias: bool) -> None:
            super().__init__()
            self.res, self.ws = res, min(window, res)
            self.shift = self.ws // 2 if shifted and res > window else 0  # one window: nothing to shift
            self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
            self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))
            n = self.ws * self.ws
            if rel_bias:  # a learned bias per head and relative offset, gathered by a fixed index
                self.bias_table = nn.Parameter(torch.randn((2 * self.ws - 1) ** 2, heads) * 0.02)
                coords = torch.stack(torch.meshgrid(torch.arange(self.ws), torch.arange(self.ws),
                                                    indexing="ij")).flatten(1)  # [2, n]
                rel = (coords[:, :, None] - coords[:, None, :]) + (self.ws - 1)  # [2, n, n], >= 0
                self.register_buffer("bias_index", rel[0] * (2 * self.ws - 1) + rel[1], persistent=False)
            else:
                self.bias_table = None
            mask = shift_mask(res, self.ws, self.shift) if self.shift else None
            self.register_buffer("mask", mask, persistent=False)
            self.n = n

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, _, c = x.shape
            y = self.norm1(x).view(b, self.res, self.res, c)
            if self.shift:
                y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
            bias = None
            if self.bias_table is not None:
                bias = self.bias_table[self.bias_index.view(-1)].view(self.n, self.n, -1).permute(2, 0, 1)
            y = self.attn(window_partition(y, self.ws), bias=bias, mask=self.mask)
            y = window_merge(y, self.ws, b, self.res, self.res)
            if self.shift:
                y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
            x = x + y.reshape(b, -1, c)
            return x + self.mlp(self.norm2(x))

    class PatchMerging(nn.Module):
        """``[B, res², C] -> [B, (res/2)², 2C]``: concatenate each 2×2 neighbourhood, LN, Linear."""

        def __init__(self, dim: int, res: int) -> None:
            super().__init__()
            self.res = res
            self.norm, self.reduce = nn.LayerNorm(4 * dim), nn.Linear(4 * dim, 2 * dim, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, _, c = x.shape
            x = x.view(b, self.res, self.res, c)
            x = torch.cat([x[:, i::2, j::2] for j in (0, 1) for i in (0, 1)], dim=-1)
            return self.reduce(self.norm(x.reshape(b, -1, 4 * c)))

    class Swin(nn.Module):
        def __init__(self, c: dict[str, Any]) -> None:
            super().__init__()
            dim, res = c["embed_dim"], c["image_size"] // c["patch_size"]
            self.patch = nn.Conv2d(3, dim, c["patch_size"], stride=c["patch_size"])
            layers: list[nn.Module] = [nn.LayerNorm(dim)]
            for i, depth in enumerate(c["depths"]):
                if i:
                    layers.append(PatchMerging(dim, res))
                    dim, res = 2 * dim, res // 2
                layers += [SwinBlock(dim, res, dim // c["head_dim"], c["window_size"], j % 2 == 1, c["mlp_ratio"],
                                     c["relative_position_bias"]) for j in range(depth)]
            self.stages = nn.Sequential(*layers)
            self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, c["num_classes"])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.stages(patch_tokens(self.patch(x)))
            return self.head(self.norm(x).mean(1))

    class MixerBlock(nn.Module):
        def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
            super().__init__()
            self.norm1, self.token_mlp = nn.LayerNorm(dim), Mlp(tokens, token_hidden)
            self.norm2, self.channel_mlp = nn.LayerNorm(dim), Mlp(dim, channel_hidden)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
            x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
            return x + self.channel_mlp(self.norm2(x))

    class MLPMixer(nn.Module):
        def __init__(self, c: dict[str, Any]) -> None:
            super().__init__()
            d, p = c["hidden_dim"], c["patch_size"]
            tokens = (c["image_size"] // p) ** 2
            self.patch = nn.Conv2d(3, d, p, stride=p)
            self.blocks = nn.Sequential(*[MixerBlock(tokens, d, c["token_mlp_dim"], c["channel_mlp_ratio"] * d)
                                          for _ in range(c["depth"])])
            self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, c["num_classes"])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.blocks(patch_tokens(self.patch(x)))
            return self.head(self.norm(x).mean(1))

    # ------------------------------------------------------------------------ Mamba
    class RMSNorm(nn.Module):
        def __init__(self, dim: int, eps: float = 1e-5) -> None:
            super().__init__()
            self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    def future_mask(t: int) -> torch.Tensor:
        """``[t, t]`` boolean, True above the diagonal (``s > t``: the future)."""
        return torch.ones(t, t, dtype=torch.bool).triu(1)

    def decay_matrix(cum: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """``[..., T] -> [..., T, T]``: ``exp(cum[t] − cum[s])`` for ``s ≤ t``, else 0.

        ``cum`` is a cumulative sum of log-decays, so the entry is the product of the decays of
        steps ``s+1..t``. ``future`` is :func:`future_mask` ``(T)``.
        """
        diff = cum[..., :, None] - cum[..., None, :]
        return torch.exp(diff.masked_fill(future, float("-inf")))

    def chunked_scan(x: torch.Tensor, log_a: torch.Tensor, b_in: torch.Tensor, c_out: torch.Tensor,
                     future_q: torch.Tensor, future_k: torch.Tensor) -> torch.Tensor:
        """The selective scan ``h_t = a_t·h_{t−1} + B_t ⊗ x_t``, ``y_t = C_tᵀ h_t`` (zero initial state),
        in closed form over chunks of ``chunk`` steps.

        Shapes: ``x [b, L, H, P]``, ``log_a [b, L, H]`` (log of the per-head decay, ≤ 0),
        ``b_in``/``c_out`` ``[b, L, N]`` (shared by the heads) → ``y [b, L, H, P]``. The chunk length
        ``Q`` and count ``k = L / Q`` come from the masks: ``future_q = future_mask(Q)``,
        ``future_k = future_mask(k + 1)``.
        """
        bsz, seq, heads, p = x.shape
        n, chunk = b_in.shape[-1], future_q.shape[0]
        k = seq // chunk
        x = x.reshape(bsz, k, chunk, heads, p).permute(0, 3, 1, 2, 4)  # [b, H, k, Q, P]
        cum = torch.cumsum(log_a.reshape(bsz, k, chunk, heads).permute(0, 3, 1, 2), dim=-1)  # [b, H, k, Q]
        b_in = b_in.reshape(bsz, 1, k, chunk, n)
        c_out = c_out.reshape(bsz, 1, k, chunk, n)
        # inside each chunk: y_t = Σ_{s≤t} (C_t·B_s) · decay(s→t) · x_s
        y = ((c_out @ b_in.transpose(-1, -2)) * decay_matrix(cum, future_q)) @ x  # [b, H, k, Q, P]
        # state at each chunk's end, from that chunk's inputs alone
        to_end = torch.exp(cum[..., -1:] - cum)  # [b, H, k, Q]
        states = (b_in * to_end[..., None]).transpose(-1, -2) @ x  # [b, H, k, N, P]
        # state entering chunk j = Σ_{i<j} decay(end of i → start of j) · states_i
        # (zeros are concatenated rather than F.pad-ded: Pad exports a constant detour)
        totals = torch.cumsum(torch.cat([cum.new_zeros(bsz, heads, 1), cum[..., -1]], dim=-1), dim=-1)  # [b, H, k+1]
        states = torch.cat([states.new_zeros(bsz, heads, 1, n, p), states], dim=2)  # zero state first
        states = states.reshape(bsz, heads, k + 1, n * p)
        entering = (decay_matrix(totals, future_k) @ states)[:, :, :k].reshape(bsz, heads, k, n, p)
        y = y + (c_out @ entering) * torch.exp(cum)[..., None]
        return y.permute(0, 2, 3, 1, 4).reshape(bsz, seq, heads, p)

    class MambaMixer(nn.Module):
        """``[B, L, d] -> [B, L, d]`` (see :class:`MambaFamily`)."""

        def __init__(self, c: dict[str, Any]) -> None:
            super().__init__()
            d, n = c["d_model"], c["d_state"]
            di = c["expand"] * d
            self.di, self.n, self.heads = di, n, di // c["head_dim"]
            self.register_buffer("future_q", future_mask(c["chunk_size"]), persistent=False)
            self.register_buffer("future_k", future_mask(c["seq_len"] // c["chunk_size"] + 1), persistent=False)
            self.in_proj = nn.Linear(d, 2 * di + 2 * n + self.heads, bias=False)  # z, x, B, C, dt
            conv_ch = di + 2 * n
            self.conv = nn.Conv1d(conv_ch, conv_ch, c["d_conv"], groups=conv_ch, padding=c["d_conv"] - 1)
            # dt = softplus(. + dt_bias) starts in [1e-3, 1e-1]; decay rates A in [1, 16]
            dt = torch.exp(torch.rand(self.heads) * math.log(100) + math.log(1e-3))
            self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
            self.a_log = nn.Parameter(torch.log(torch.empty(self.heads).uniform_(1, 16)))
            self.d_skip = nn.Parameter(torch.ones(self.heads))
            self.norm = RMSNorm(di)
            self.out_proj = nn.Linear(di, d, bias=False)

        def forward(self, u: torch.Tensor) -> torch.Tensor:
            bsz, seq, _ = u.shape
            z, xbc, dt = self.in_proj(u).split([self.di, self.di + 2 * self.n, self.heads], dim=-1)
            xbc = F.silu(self.conv(xbc.transpose(1, 2))[..., :seq]).transpose(1, 2)  # causal: drop the tail
            x, b_in, c_out = xbc.split([self.di, self.n, self.n], dim=-1)
            dt = F.softplus(dt + self.dt_bias)  # [B, L, H]
            x = x.reshape(bsz, seq, self.heads, -1)
            y = chunked_scan(x * dt[..., None], -torch.exp(self.a_log) * dt, b_in, c_out, self.future_q, self.future_k)
            y = (y + x * self.d_skip[:, None]).reshape(bsz, seq, self.di)
            return self.out_proj(self.norm(y * F.silu(z)))

    class MambaBlock(nn.Module):
        def __init__(self, c: dict[str, Any]) -> None:
            super().__init__()
            self.norm, self.mixer = RMSNorm(c["d_model"]), MambaMixer(c)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.mixer(self.norm(x))

    class MambaLM(nn.Module):
        """Token ids ``[B, L]`` (int64) → logits ``[B, L, vocab]``."""

        def __init__(self, c: dict[str, Any]) -> None:
            super().__init__()
            self.embed = nn.Embedding(c["vocab_size"], c["d_model"])
            self.blocks = nn.Sequential(*[MambaBlock(c) for _ in range(c["n_layers"])])
            self.norm = RMSNorm(c["d_model"])
            self.lm_head = nn.Linear(c["d_model"], c["vocab_size"], bias=False)
            if c["tie_embeddings"]:
                self.lm_head.weight = self.embed.weight

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.lm_head(self.norm(self.blocks(self.embed(ids))))

    # ------------------------------------------------------------------------ CNNs
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

    # ------------------------------------------------------------------------ GNNs
    def activation(name: str) -> nn.Module:
        return nn.ReLU() if name == "relu" else nn.ELU()

    class GraphConv(nn.Module):
        """``Â·(H·W) + b`` (the bias is added after aggregation)."""

        def __init__(self, fin: int, fout: int) -> None:
            super().__init__()
            self.lin, self.bias = nn.Linear(fin, fout, bias=False), nn.Parameter(torch.zeros(fout))

        def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
            return adj @ self.lin(x) + self.bias

    class GCN(nn.Module):
        """``(x [.., N, F], adj [.., N, N]) -> [.., N, classes]``"""

        def __init__(self, c: dict[str, Any]) -> None:
            super().__init__()
            self.convs = nn.ModuleList(GraphConv(fi, fo) for fi, fo in GCNFamily.layer_dims(c))
            self.act, self.residual, self.log_softmax = activation(c["activation"]), c["residual"], c["log_softmax"]

        def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
            for i, conv in enumerate(self.convs):
                y = conv(x, adj)
                if i < len(self.convs) - 1:
                    y = self.act(y)
                    if self.residual and y.shape[-1] == x.shape[-1]:
                        y = y + x
                x = y
            return F.log_softmax(x, dim=-1) if self.log_softmax else x

    class SAGEConv(nn.Module):
        """``W·[H ‖ Ā·H] + b`` (mean aggregation, as the row-normalised ``Ā`` gives)."""

        def __init__(self, fin: int, fout: int) -> None:
            super().__init__()
            self.lin = nn.Linear(2 * fin, fout)

        def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
            return self.lin(torch.cat([x, adj @ x], dim=-1))

    class GraphSAGE(nn.Module):
        """``(x [.., N, F], adj [.., N, N]) -> [.., N, classes]``"""

        def __init__(self, c: dict[str, Any]) -> None:
            super().__init__()
            self.convs = nn.ModuleList(SAGEConv(fi, fo) for fi, fo in GraphSAGEFamily.layer_dims(c))
            self.act, self.normalize, self.log_softmax = activation(c["activation"]), c["normalize"], c["log_softmax"]

        def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
            for i, conv in enumerate(self.convs):
                x = conv(x, adj)
                if i < len(self.convs) - 1:
                    x = self.act(x)
                    if self.normalize:  # L2, written out (F.normalize exports a Shape/Expand detour)
                        x = x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)
            return F.log_softmax(x, dim=-1) if self.log_softmax else x

    return SimpleNamespace(
        torch=torch, ViT=ViT, ConvNeXt=ConvNeXt, Swin=Swin, MLPMixer=MLPMixer, MambaLM=MambaLM,
        chunked_scan=chunked_scan, BatchChannelNorm2d=BatchChannelNorm2d, LinOsc=LinOsc, ConvNet=ConvNet,
        GCN=GCN, GraphSAGE=GraphSAGE,
    )


__all__ = ["BCNConvNetFamily", "ConvNeXtFamily", "GCNFamily", "GraphSAGEFamily", "LinOscConvNetFamily",
           "MLPMixerFamily", "MambaFamily", "ModernFamily", "SwinFamily", "ViTFamily"]
