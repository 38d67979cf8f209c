"""Model-family zoo: generators that sample architecture variants and export weight-free ONNX.

One module per kind of network (``cnn``, ``mobile``, ``grouped_cnn``, ``vision_transformer``,
``text_transformer``, ``recurrent``, ...); shared torch blocks live in :mod:`archcast.zoo.layers`
and the sampling bases in :mod:`archcast.zoo.sampling`. Family modules import torch, so they
register only on :func:`load_builtin_families`: importing this package stays light.
"""

from __future__ import annotations

import importlib

from archcast.zoo.base import FAMILIES, Family, ZooSample, export_sample, get_family

# one module per kind of network; importing one registers its families (and imports torch)
BUILTIN_MODULES = ("cnn", "mobile", "nb201", "convnext", "vision_transformer", "ssm", "norm_act_cnn", "graph_nets",
                   "grouped_cnn", "densenet", "ghostnet", "repvgg", "convmixer", "hybrid", "dense_prediction",
                   "recurrent", "text_transformer", "nfnet")


def load_builtin_families() -> None:
    """Import the built-in family modules so they register (idempotent)."""
    for mod in BUILTIN_MODULES:
        full = f"{__name__}.{mod}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError as e:
            if e.name != full:
                raise


__all__ = ["FAMILIES", "Family", "ZooSample", "export_sample", "get_family", "load_builtin_families"]
