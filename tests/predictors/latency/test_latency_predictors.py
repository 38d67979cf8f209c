"""Latency predictors: every registered one trains on tiny data; the archcast model's maths
(per-graph logsumexp, packing, per-operator breakdown) and its checkpoint round trip / refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from archcast.errors import CheckpointError, InvalidInputError
from archcast.models.latency_net import graph_logsumexp
from archcast.predictors import create_predictor
from archcast.predictors.latency.archcast import ArchcastLatency
from archcast.tokenizer import batching as F_
from tests.conftest import TINY_PREDICTORS


@pytest.fixture(scope="module")
def data(zoo_latency):
    return zoo_latency


def test_linear_baselines_recover_exact_relations(data):
    graphs, _ = data
    f = np.array([g.flops for g in graphs], dtype=float)
    m = np.array([g.memory_bytes for g in graphs], dtype=float)
    y = 0.1 + 2.0 * f / 1e9 + 0.5 * m / 1e6
    p = create_predictor("flops-mem-linear", task="latency").fit(graphs, y, graphs[:2], y[:2])
    np.testing.assert_allclose(p.predict(graphs), y, rtol=1e-6)
    y2 = 3.0 * (1 + f) ** 0.7
    p = create_predictor("flops-linear", task="latency").fit(graphs, y2, graphs[:2], y2[:2])
    np.testing.assert_allclose(p.predict(graphs), y2, rtol=1e-6)


def test_bad_input(data):
    graphs, y = data
    with pytest.raises(InvalidInputError, match="unknown hyper-parameter"):
        create_predictor("archcast", task="latency", widht=3).fit(graphs, y, graphs[:2], y[:2])
    with pytest.raises(InvalidInputError, match="positive"):
        create_predictor("flops-linear", task="latency").fit(graphs[:3], np.array([1.0, 0.0, 2.0]), graphs[:2], y[:2])
    from archcast.frontends.cells import nb201_graph

    cell = nb201_graph("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|")
    with pytest.raises(InvalidInputError, match="whole-network"):
        create_predictor("gbdt", task="latency").fit([cell, cell], np.ones(2), [cell, cell], np.ones(2))


def test_graph_logsumexp_matches_torch():
    s = torch.randn(10, dtype=torch.float64) * 5
    gi = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 3, 3])
    got = graph_logsumexp(s, gi, 4)
    want = torch.stack([torch.logsumexp(s[gi == k], 0) for k in range(4)])
    torch.testing.assert_close(got, want)


def test_size_batches_cover_every_index_once():
    sizes = np.random.default_rng(0).integers(1, 300, 500)
    for by_size in (True, False):
        batches = F_.size_batches(sizes, 2000, np.random.default_rng(1), max_graphs=32, by_size=by_size)
        allidx = np.concatenate(batches)
        assert sorted(allidx.tolist()) == list(range(500))
        assert all(len(b) <= 32 and (sizes[b].sum() <= 2000 or len(b) == 1) for b in batches)


def test_edges_are_forward_in_token_order(data):
    graphs, _ = data
    for g in graphs:
        e = F_.directed_edges(g)
        assert np.all(e[:, 0] < e[:, 1])
        assert len(e) == len(set(map(tuple, np.asarray(g.edges).tolist())))


@pytest.fixture(scope="module")
def fitted(data):
    graphs, y = data
    return ArchcastLatency(**TINY_PREDICTORS[("latency", "archcast")]).fit(graphs[:9], y[:9], graphs[9:], y[9:])


def test_packed_batch_equals_one_at_a_time(data, fitted):
    graphs, _ = data
    together = fitted.predict_members(graphs)
    alone = np.concatenate([fitted.predict_members([g]) for g in graphs], axis=1)
    np.testing.assert_allclose(together, alone, rtol=1e-5)


def test_breakdown_sums_to_the_prediction(data, fitted):
    graphs, _ = data
    members = fitted.predict_members(graphs)
    for k, g in enumerate(graphs):
        order, rows = fitted.breakdown(g)
        assert sorted(order) == list(range(len(g.nodes))) and rows.shape == (2, len(g.nodes))
        assert np.all(rows > 0)
        np.testing.assert_allclose(rows.sum(1), members[:, k], rtol=1e-5)


def test_checkpoint_round_trip_and_refusal(data, fitted, tmp_path):
    graphs, _ = data
    d = fitted.save(tmp_path / "ck", extra={"platform": {"name": "x"}},
                    extra_tensors={"x.reference": torch.zeros(2, 3)})
    back = ArchcastLatency.load(d)
    np.testing.assert_allclose(back.predict(graphs), fitted.predict(graphs), rtol=1e-6)
    assert back.checkpoint_config_["platform"] == {"name": "x"} and back.extra_tensors_["x.reference"].shape == (2, 3)
    cfg = json.loads((d / "config.json").read_text())
    cfg["tokenizer_version"] = "0"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="tokenizer_version='0'.*tokenizer_version='1'"):
        ArchcastLatency.load(d)
    with pytest.raises(InvalidInputError, match="must start with 'x.'"):
        fitted.save(tmp_path / "bad", extra_tensors={"reference": torch.zeros(1)})
