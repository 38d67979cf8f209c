"""Shared tiny fixtures: zoo graphs with a synthetic latency, NB201 cells with a synthetic
accuracy, tiny predictor settings, and a torch-threads guard.

Markers: ``slow`` (seconds of training or more), ``subprocess`` (starts processes: the CLI or
profiling workers). ``pytest -m "not slow and not subprocess"`` gives the quick inner loop.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

# the runtime-graph cache of `archcast predict` goes to a scratch directory, never the user's
os.environ.setdefault("ARCHCAST_CACHE", tempfile.mkdtemp(prefix="archcast-test-cache-"))

# tiny, fast settings of every registered predictor: (task, name) -> hyper-parameters
TINY_PREDICTORS: dict[tuple[str, str], dict] = {
    ("latency", "archcast"): dict(width=16, n_blocks=1, head_hidden=16, epochs=3, ensemble=2),
    ("latency", "nnlp"): dict(hidden=16, epochs=3),
    ("latency", "narformer-v2"): dict(width=16, fc_hidden=16, epochs=2),
    ("latency", "gbdt"): dict(n_estimators=20, min_child_samples=2),
    ("latency", "flops-linear"): {},
    ("latency", "flops-mem-linear"): {},
    ("latency", "kernels"): dict(n_estimators=20, min_child_samples=2, min_kernels=3),
    ("latency", "kernels-prior"): dict(min_kernels=3),
    ("accuracy", "archcast"): dict(epochs=20, width=16, n_blocks=1, fc_hidden=16, ensemble=1, batch_size=32),
    ("accuracy", "narformer-v2"): dict(epochs=2, width=16, n_blocks=1, fc_hidden=16, ffn_groups=4),
    ("accuracy", "mlp"): dict(epochs=20, patience=10, hidden=32, threads=1),
    ("accuracy", "gcn"): dict(epochs=20, patience=10, hidden=32, threads=1),
    ("accuracy", "nnlp"): dict(epochs=10, patience=5, hidden=16, threads=1),
    ("accuracy", "lgbm"): dict(n_estimators=60, early_stopping_rounds=20, n_jobs=1, min_child_samples=3),
}

ZOO_SAMPLES = [("gcn", s) for s in range(4)] + [("graphsage", s) for s in range(4)] + [("nb201", s) for s in range(4)]
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@pytest.fixture
def torch_one_thread():
    """Run the test with one torch thread and restore the caller's setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def zoo_latency():
    """12 small zoo networks (GCN, GraphSAGE, NB201) and a synthetic additive latency in ms."""
    from archcast.frontends.onnx import load_onnx
    from archcast.zoo import export_sample, get_family

    graphs = [load_onnx(export_sample(get_family(f).sample(s)), name=f"{f}-{s}") for f, s in ZOO_SAMPLES]
    y = np.array([0.02 * len(g.nodes) + g.flops / 5e7 + 0.05 for g in graphs])
    return graphs, y


def synthetic_kernel_times(graphs) -> list[dict[str, float]]:
    """Per-node times (µs) that add up to :func:`zoo_latency`'s target, less its 50 µs per run: the
    kernel labels of predictors that read what runs, with each graph standing in for its runtime graph."""
    return [{n.name: 20.0 + n.flops / 5e4 for n in g.nodes} for g in graphs]


def nb201_arch(ops: tuple[str, ...]) -> str:
    """The NB201 string of six edge ops (edge order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""
    o = ops
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


@pytest.fixture(scope="session")
def nb201_accuracy():
    """300 random NB201 cells with a synthetic accuracy that rewards 3x3 convs on live paths."""
    from archcast.frontends.cells import nb201_graph

    rng = np.random.default_rng(0)
    graphs, y = [], []
    for _ in range(300):
        ops = tuple(NB201_OPS[i] for i in rng.integers(0, len(NB201_OPS), 6))
        score = 60 + 5 * ops.count("nor_conv_3x3") + 2 * ops.count("nor_conv_1x1") - 4 * ops.count("none")
        graphs.append(nb201_graph(nb201_arch(ops)))
        y.append(score + rng.normal(0, 0.5))
    return graphs, np.array(y)
