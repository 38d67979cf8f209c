"""Torch builders of the published networks of :mod:`archcast.bench.published_nets` (imports torch).

The builders live in :mod:`._published_cnn` (convolutional) and :mod:`._published_mixers` (token
mixers, transformers) over the shared pieces of :mod:`._published_common`. Each ``build_<name>()``
returns the network at its published configuration (1000 classes, eval-time graph: no auxiliary heads,
no dropout, no stochastic depth). They are written from the papers' descriptions in plain torch; every
op is one ONNX exports at opset 17 (no ``nn.MultiheadAttention``, no ``F.unfold``). Spatial sizes are
static, so the token models reshape with Python ints.
"""

from __future__ import annotations

from torch import nn

from archcast.bench._published_cnn import (
    build_cspdarknet53, build_dla34, build_dpn68, build_efficientnetv2_s, build_inception_v3, build_mixnet_s,
    build_mobilenet_v1, build_res2net50, build_se_resnet50, build_xception,
)
from archcast.bench._published_mixers import (
    build_gmlp_s, build_levit_128s, build_mobilevit_s, build_poolformer_s12, build_pvt_v2_b0, build_resmlp_s12,
)

BUILDERS = {
    "inception_v3": build_inception_v3, "xception": build_xception, "se_resnet50": build_se_resnet50,
    "res2net50_26w_4s": build_res2net50, "dla34": build_dla34, "cspdarknet53": build_cspdarknet53,
    "dpn68": build_dpn68, "mobilenet_v1": build_mobilenet_v1, "mixnet_s": build_mixnet_s,
    "efficientnetv2_s": build_efficientnetv2_s, "resmlp_s12": build_resmlp_s12, "gmlp_s": build_gmlp_s,
    "mobilevit_s": build_mobilevit_s, "poolformer_s12": build_poolformer_s12, "pvt_v2_b0": build_pvt_v2_b0,
    "levit_128s": build_levit_128s,
}


def param_count(module: nn.Module) -> int:
    """Learned parameters (buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in module.parameters())
