"""Benchmarks: every one writes JSON + Markdown + PNG (see :mod:`archcast.bench.report`).

This package's ``__init__`` stays import-light: the CLI reads these constants to build its parser.
"""

LATENCY_PROTOCOLS = ("in-family", "lofo", "logo")
DEFAULT_LATENCY_PREDICTORS = ("archcast", "narformer-v2", "nnlp", "gbdt", "flops-mem-linear", "flops-linear")
