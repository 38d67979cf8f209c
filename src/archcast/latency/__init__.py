"""Latency prediction for whole networks: features, the archcast model, baselines, benchmark,
the shipped per-platform predictors, prediction service and new-device adaptation.

This package's ``__init__`` stays import-light (no torch): the CLI reads these constants."""

PROTOCOLS = ("in-family", "lofo")
DEFAULT_PREDICTORS = ("archcast", "narformer-v2", "nnlp", "gbdt", "flops-mem-linear", "flops-linear")
