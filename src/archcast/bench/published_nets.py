"""Published image classifiers at their canonical configurations: a hold-out set for the latency benchmarks.

Sixteen ImageNet (1000-class) architectures, each at the size and input resolution its paper reports,
written in plain torch from the papers' descriptions (:mod:`archcast.bench._published_models`). Most
come from families archcast's zoo does not generate (Inception, Xception, Res2Net, DLA, CSPNet, DPN,
MixConv, MobileNetV1, MobileViT, PoolFormer, ResMLP, gMLP, PVT, LeViT); SE-ResNet-50 and
EfficientNetV2-S are near zoo families (``resnext`` with an SE gate, ``efficientnet``) and are
kept as in-reach controls. :attr:`PublishedNet.nearest_zoo_family` names the closest zoo family.

The graphs are the eval-time ones: no auxiliary classifiers (Inception-v3), no dropout or stochastic
depth; LeViT averages its classifier and distillation heads, as its evaluation does.

Parameter counts (ours, computed with :func:`archcast.bench._published_models.param_count`, vs the
paper; within 5 % where the paper gives a number, PVT-v2-b0 aside, see its note):

=================== ====== ======== ======== =========================================================
net                 image  ours (M) paper(M) note
=================== ====== ======== ======== =========================================================
inception_v3        299    23.83    23.6     count from the Xception paper's Table 3 (+0.9 %); no aux head
xception            299    22.86    22.86    exact (22,855,952)
se_resnet50         224    28.09    28.1     ResNet-50's ~25.6 M + the ~2.5 M the paper says SE adds
res2net50_26w_4s    224    25.70    25.7     exact
dla34               224    15.78    --       commonly reported 15.8 M; not checked against the paper
cspdarknet53        256    27.64    27.6     +0.2 %
dpn68               224    12.61    --       the paper gives a 49 MB model size (about 12.3-12.8 M floats)
mobilenet_v1        224    4.23     4.2      +0.8 %
mixnet_s            224    4.14     4.1      +1.1 %
efficientnetv2_s    384    21.46    22       -2.5 % (paper rounds); 384 px is its evaluation size
resmlp_s12          224    15.35    15.4     -0.3 %
gmlp_s              224    19.42    20       -2.9 % (paper rounds)
mobilevit_s         256    5.58     5.6      -0.4 %
poolformer_s12      224    11.92    12       -0.7 % (paper rounds)
pvt_v2_b0           224    3.67     3.4      +7.9 %: the paper's 3.4 M excludes the 1000-class head
                                             (257 k); without it ours is 3.41 M
levit_128s          224    7.78     7.8      -0.3 % (both heads counted)
=================== ====== ======== ======== =========================================================

Not included: ResNeSt-50, SKNet-50, CaiT and ConvNeXt-V2 (optional in the plan; left out to keep the
set at sixteen), DeiT (the zoo's ``vit`` family) and ShuffleNetV2 (the zoo's ``shufflenet``). Every
net listed exports to ONNX, loads as archcast IR and runs in onnxruntime; none had to be dropped.

Importing this module does not import torch: the builders load on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from archcast.errors import InvalidInputError, UnknownNameError

if TYPE_CHECKING:
    import torch

KINDS = ("cnn", "mobile", "mlp", "transformer")


@dataclass(frozen=True)
class PublishedNet:
    """One published architecture.

    Attributes:
        name: short identifier, e.g. ``"inception_v3"``.
        paper: short citation.
        kind: ``"cnn"``, ``"mobile"``, ``"mlp"`` or ``"transformer"`` (vision Transformers, MetaFormers and
            conv-attention hybrids).
        image_size: the (square) input resolution the paper evaluates at.
        nearest_zoo_family: the closest archcast zoo family, or None.
        params_paper_m: parameters in millions as the paper states them (None: it gives none we could check).
    """

    name: str
    paper: str
    kind: str
    image_size: int
    nearest_zoo_family: str | None
    params_paper_m: float | None


def _net(name: str, paper: str, kind: str, image_size: int, nearest: str | None,
         params: float | None) -> PublishedNet:
    return PublishedNet(name, paper, kind, image_size, nearest, params)


# ordered CNNs, mobile CNNs, MLPs, transformers; the comment is our parameter count
PUBLISHED: dict[str, PublishedNet] = {n.name: n for n in (
    _net("inception_v3", "Szegedy et al. 2016, Rethinking the Inception Architecture", "cnn", 299,
         "googlenet", 23.6),  # 23.83 M
    _net("xception", "Chollet 2017, Xception: Deep Learning with Depthwise Separable Convolutions", "cnn", 299,
         "mobilenetv2", 22.86),  # 22.86 M
    _net("se_resnet50", "Hu et al. 2018, Squeeze-and-Excitation Networks", "cnn", 224, "resnext", 28.1),  # 28.09 M
    _net("res2net50_26w_4s", "Gao et al. 2019, Res2Net: A New Multi-scale Backbone Architecture", "cnn", 224,
         "resnet", 25.7),  # 25.70 M
    _net("dla34", "Yu et al. 2018, Deep Layer Aggregation", "cnn", 224, "resnet", None),  # 15.78 M
    _net("cspdarknet53", "Wang et al. 2020, CSPNet: A New Backbone that can Enhance Learning Capability of CNN",
         "cnn", 256, "resnet", 27.6),  # 27.64 M
    _net("dpn68", "Chen et al. 2017, Dual Path Networks", "cnn", 224, "resnext", None),  # 12.61 M
    _net("mobilenet_v1", "Howard et al. 2017, MobileNets: Efficient CNNs for Mobile Vision Applications", "mobile",
         224, "mobilenetv2", 4.2),  # 4.23 M
    _net("mixnet_s", "Tan & Le 2019, MixConv: Mixed Depthwise Convolutional Kernels", "mobile", 224,
         "efficientnet", 4.1),  # 4.14 M
    _net("efficientnetv2_s", "Tan & Le 2021, EfficientNetV2: Smaller Models and Faster Training", "mobile", 384,
         "efficientnet", 22.0),  # 21.46 M
    _net("resmlp_s12", "Touvron et al. 2022, ResMLP: Feedforward Networks for Image Classification", "mlp", 224,
         "mlpmixer", 15.4),  # 15.35 M
    _net("gmlp_s", "Liu et al. 2021, Pay Attention to MLPs", "mlp", 224, "mlpmixer", 20.0),  # 19.42 M
    _net("mobilevit_s", "Mehta & Rastegari 2022, MobileViT: Light-weight, General-purpose Vision Transformer",
         "transformer", 256, "coatnet", 5.6),  # 5.58 M
    _net("poolformer_s12", "Yu et al. 2022, MetaFormer is Actually What You Need for Vision", "transformer", 224,
         "efficientformer", 12.0),  # 11.92 M
    _net("pvt_v2_b0", "Wang et al. 2022, PVT v2: Improved Baselines with Pyramid Vision Transformer",
         "transformer", 224, "swin", 3.4),  # 3.67 M (3.41 M without the classifier, as the paper counts)
    _net("levit_128s", "Graham et al. 2021, LeViT: a Vision Transformer in ConvNet's Clothing", "transformer",
         224, "vit", 7.8),  # 7.78 M
)}


def _get(name: str) -> PublishedNet:
    try:
        return PUBLISHED[name]
    except (KeyError, TypeError):
        raise UnknownNameError(f"unknown published network {name!r}; valid: {', '.join(PUBLISHED)}") from None


def _check_batch(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    return batch_size


def build_published(name: str, batch_size: int = 1) -> tuple["torch.nn.Module", tuple["torch.Tensor", ...]]:
    """The network ``name`` in eval mode and its example inputs (one ``[B, 3, S, S]`` image batch at the
    paper's resolution). Weights are drawn with torch's RNG seeded to 0 (the caller's RNG state is left as it
    was), so two builds are identical.

    Raises:
        UnknownNameError: ``name`` is not in :data:`PUBLISHED` (the message lists the valid names).
        InvalidInputError: ``batch_size`` is not an integer >= 1.
    """
    net = _get(name)
    _check_batch(batch_size)
    from archcast._torch import seeded
    from archcast.bench._published_models import BUILDERS
    from archcast.zoo.layers import image_input

    with seeded(0):
        module = BUILDERS[net.name]().eval()
    return module, (image_input(batch_size, net.image_size),)


def export_published(name: str, batch_size: int = 1, weight_free: bool = True) -> bytes:
    """ONNX bytes of ``name`` (opset 17), exported like :func:`archcast.zoo.base.export_sample` does it: one
    torch thread, the RNG forked and seeded to 0, weights stripped unless ``weight_free=False``."""
    net = _get(name)
    _check_batch(batch_size)
    import onnx
    import torch

    from archcast._torch import torch_threads
    from archcast.frontends.onnx import strip_weights
    from archcast.frontends.torch import export_onnx_bytes

    with torch_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module, inputs = build_published(net.name, batch_size)
        data = export_onnx_bytes(module, inputs)
    if weight_free:
        data = strip_weights(onnx.load_from_string(data)).SerializeToString()
    return data


__all__ = ["KINDS", "PUBLISHED", "PublishedNet", "build_published", "export_published"]
