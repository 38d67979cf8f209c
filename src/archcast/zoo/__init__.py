"""Model-family zoo: generators that sample architecture variants and export weight-free ONNX.

One module per kind of network (``cnn``, ``mobile``, ``grouped_cnn``, ``vision_transformer``,
``text_transformer``, ``recurrent``, ...); shared torch blocks live in :mod:`archcast.zoo.layers`
and the sampling bases in :mod:`archcast.zoo.sampling`. Family modules import torch, so they
register only on :func:`load_builtin_families`: importing this package stays light.
"""

from __future__ import annotations

from archcast.zoo.base import (
    BUILTIN_MODULES, FAMILIES, Family, ZooSample, export_sample, get_family, load_builtin_families,
)

__all__ = ["BUILTIN_MODULES", "FAMILIES", "Family", "ZooSample", "export_sample", "get_family", "load_builtin_families"]
