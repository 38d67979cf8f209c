"""``KernelLatency.adapt`` (a copy of the ``kernels`` predictor adapted to a few networks measured on
another machine) and the picker of which models to measure (:mod:`archcast.adapt.kernel_pick`):
a known per-class slow-down recovered, latency-only adaptation at least as good as one global
scale, the base untouched, the checkpoint round trip exact, the picks deterministic and spanning
the latency range."""

from __future__ import annotations

import numpy as np
import pytest

from archcast.adapt.kernel_pick import pick_for_kernels, pick_models
from archcast.errors import InvalidInputError
from archcast.graph import NetGraph, Node
from archcast.predictors import create_predictor
from archcast.predictors.latency.kernels import CLASSES, KernelLatency
from archcast.tokenizer.kernel_table import KERNEL_COLUMNS, kernel_row

COL = {c: i for i, c in enumerate(KERNEL_COLUMNS)}


def _conv(c: int, hw: int, name: str) -> Node:
    attrs = {"group": 1, "strides": (1, 1), "kernel_shape": (3, 3), "activation": "Relu"}
    return Node(name, "com.microsoft.nchwc.Conv", attrs, [(1, c, hw, hw)], [(1, c, hw, hw)], flops=c * hw * hw,
                params=c * c * 9 + c)


def _platform(n: int, seed: int, conv_slowdown: float = 1.0, gemm_slowdown: float = 1.0):
    """Runtime-like graphs of convs, Adds and Gemms with kernel times from a known law (convs
    ``conv_slowdown`` and Gemms ``gemm_slowdown`` times slower on this platform) and latencies =
    kernel sum - 2 µs per kernel."""
    rng = np.random.default_rng(seed)
    graphs, times, y = [], [], []
    for i in range(n):
        nodes = []
        mix = rng.dirichlet([1.0, 1.0, 1.0])  # kernel mixes differ from network to network
        for j in range(int(rng.integers(3, 12))):
            c, hw = int(rng.choice([16, 32, 64, 128])), int(rng.choice([7, 14, 28]))
            kind = rng.choice(3, p=mix)
            if kind == 0:
                nodes.append(_conv(c, hw, f"k{j}"))
            elif kind == 1:
                nodes.append(Node(f"k{j}", "Add", {}, [(1, c, hw, hw)] * 2, [(1, c, hw, hw)], flops=c * hw * hw))
            else:
                nodes.append(Node(f"k{j}", "Gemm", {}, [(c, 4 * c), (4 * c, c)], [(c, c)], flops=2 * 4 * c ** 3,
                                  params=4 * c * c))
        law = {}
        for nd in nodes:
            row = kernel_row(nd)
            mb = (row[COL["bytes_in"]] + row[COL["bytes_out"]]) / 1e6
            if nd.op_type == "Add":
                law[nd.name] = 3.0 + 50.0 * mb
            elif nd.op_type == "Gemm":
                law[nd.name] = (2.0 + 8.0 * row[COL["flops"]] / 1e6) * gemm_slowdown
            else:
                law[nd.name] = (4.0 + 10.0 * row[COL["flops"]] / 1e6) * conv_slowdown
        graphs.append(NetGraph(nodes=nodes, edges=[(a, a + 1) for a in range(len(nodes) - 1)],
                               inputs={"x": (1, 16, 28, 28)}, name=f"g{seed}_{i}"))
        times.append(law)
        y.append((sum(law.values()) - 2.0 * len(nodes)) / 1000.0)
    return graphs, times, np.array(y)


@pytest.fixture(scope="module")
def base():
    g, t, y = _platform(90, seed=0)
    return create_predictor("kernels-prior", task="latency", min_kernels=5).fit(
        g[:70], y[:70], g[70:], y[70:], kernel_times=t[:70])


def _mape(y, p) -> float:
    return float(np.mean(np.abs(p / y - 1.0)))


def test_a_per_class_slowdown_is_recovered_from_twenty_models_with_kernel_times(base):
    g, t, y = _platform(20, seed=1, conv_slowdown=2.0)
    a = base.adapt(g, y, kernel_times=t)
    scale = dict(zip(CLASSES, a.class_scale_))
    assert scale["conv"] == pytest.approx(2.0, rel=0.10)
    assert scale["elementwise"] == pytest.approx(1.0, rel=0.10) and scale["gemm"] == pytest.approx(1.0, rel=0.10)
    assert a.adapt_info_["from_kernel_times"] and a.adapt_info_["loo_mape_chosen"] <= a.adapt_info_["loo_mape_global"]
    gt, _, yt = _platform(60, seed=2, conv_slowdown=2.0)
    glob = base.predict(g)
    factor = float(np.exp(np.median(np.log(y / glob))))
    assert _mape(yt, a.predict(gt)) < 0.5 * _mape(yt, base.predict(gt) * factor)


def test_from_latencies_alone_it_is_at_least_as_good_as_one_global_scale(base):
    g, _, y = _platform(20, seed=3, conv_slowdown=2.0, gemm_slowdown=0.6)
    a = base.adapt(g, y)
    assert not a.adapt_info_["from_kernel_times"]
    gt, _, yt = _platform(60, seed=4, conv_slowdown=2.0, gemm_slowdown=0.6)
    factor = float(np.exp(np.median(np.log(y / base.predict(g)))))
    assert _mape(yt, a.predict(gt)) <= _mape(yt, base.predict(gt) * factor) + 1e-9
    assert a.adapt_info_["loo_mape_chosen"] <= a.adapt_info_["loo_mape_global"]


def test_the_base_is_unchanged_and_a_same_platform_adaptation_changes_little(base):
    g, t, y = _platform(12, seed=5)
    probe = _platform(10, seed=6)[0]
    before, map_before = base.predict(probe), base.map_.copy()
    a = base.adapt(g, y, kernel_times=t)
    np.testing.assert_array_equal(base.predict(probe), before)
    np.testing.assert_array_equal(base.map_, map_before)
    assert base.class_scale_ is None and not hasattr(base, "adapt_info_")
    np.testing.assert_allclose(a.predict(probe), before, rtol=0.02)


@pytest.mark.parametrize("name", ["kernels-prior", "kernels"])
def test_an_adapted_checkpoint_round_trips_exactly(tmp_path, name):
    g, t, y = _platform(60, seed=7)
    kw = {"n_estimators": 10, "min_child_samples": 5} if name == "kernels" else {}
    b = create_predictor(name, task="latency", min_kernels=5, **kw).fit(g[:45], y[:45], g[45:], y[45:],
                                                                        kernel_times=t[:45])
    ga, ta, ya = _platform(15, seed=8, conv_slowdown=1.5)
    a = b.adapt(ga, ya, kernel_times=ta)
    a.save(tmp_path / "ck")
    back = KernelLatency.load(tmp_path / "ck")
    probe = _platform(10, seed=9)[0]
    np.testing.assert_allclose(back.predict(probe), a.predict(probe), rtol=1e-12)
    np.testing.assert_array_equal(back.class_scale_, a.class_scale_)
    assert back.adapt_info_["chosen"] == a.adapt_info_["chosen"]
    # a checkpoint of the unadapted base still loads and predicts as before (no adaptation keys)
    b.save(tmp_path / "base")
    plain = KernelLatency.load(tmp_path / "base")
    assert plain.class_scale_ is None
    np.testing.assert_allclose(plain.predict(probe), b.predict(probe), rtol=1e-12)



def test_a_loaded_checkpoint_adapts_and_saves_again(tmp_path):
    """Loaded with NumPy trees (as the shipped checkpoint is), adapted, saved, loaded: the same
    predictions; the LightGBM file is copied from the source checkpoint while it is there."""
    import json
    import shutil

    from archcast.predictors.latency.trees import NumpyTrees

    g, t, y = _platform(60, seed=12)
    fitted = create_predictor("kernels", task="latency", min_kernels=5, n_estimators=10, min_child_samples=5).fit(
        g[:45], y[:45], g[45:], y[45:], kernel_times=t[:45])
    fitted.save(tmp_path / "base")
    base = KernelLatency.load(tmp_path / "base")
    assert isinstance(base.gbm_, NumpyTrees)
    base.save(tmp_path / "base")  # over its own directory: nothing to copy, nothing lost
    ga, _, ya = _platform(15, seed=13, conv_slowdown=1.5)
    a = base.adapt(ga, ya, seed=0)
    a.save(tmp_path / "adapted")
    cfg = json.loads((tmp_path / "adapted" / "config.json").read_text())
    copied, source = (tmp_path / d / KernelLatency.GBM_FILE for d in ("adapted", "base"))
    assert cfg["correction_file"] == KernelLatency.GBM_FILE and copied.read_text() == source.read_text()
    back = KernelLatency.load(tmp_path / "adapted")
    probe = _platform(10, seed=14)[0]
    ref = a.predict(probe)
    np.testing.assert_allclose(back.predict(probe), ref, rtol=1e-9)
    np.testing.assert_allclose(fitted.predict(probe), base.predict(probe), rtol=1e-9)
    assert not np.allclose(ref, base.predict(probe), rtol=1e-3)  # the adaptation is in the checkpoint
    shutil.rmtree(tmp_path / "base")  # the adapted copy's source is gone: the trees alone, no LightGBM file named
    a.save(tmp_path / "again")
    cfg = json.loads((tmp_path / "again" / "config.json").read_text())
    assert cfg["correction_file"] is None and not (tmp_path / "again" / KernelLatency.GBM_FILE).exists()
    np.testing.assert_allclose(KernelLatency.load(tmp_path / "again").predict(probe), ref, rtol=1e-9)

def test_adapt_refuses_bad_input(base):
    g, t, y = _platform(5, seed=10)
    with pytest.raises(InvalidInputError, match="at least 3 networks"):
        base.adapt(g[:2], y[:2])
    with pytest.raises(InvalidInputError, match="4 latencies for 5 graphs"):
        base.adapt(g, y[:4])
    with pytest.raises(InvalidInputError, match="kernel_times has 2 entries"):
        base.adapt(g, y, kernel_times=t[:2])


def test_the_picker_is_deterministic_distinct_and_spans_the_latency_range(base):
    rng = np.random.default_rng(0)
    log_ms = rng.normal(size=300)
    class_us = rng.gamma(0.5, size=(300, len(CLASSES)))
    for n in (5, 10, 20, 50):
        a = pick_models(log_ms, class_us, n, seed=3)
        np.testing.assert_array_equal(a, pick_models(log_ms, class_us, n, seed=3))
        assert len(a) == n and len(set(a.tolist())) == n and a.min() >= 0 and a.max() < 300
        strata = max(2, int(round(np.sqrt(n))))
        rank = np.argsort(np.argsort(log_ms))[a]
        assert rank.min() < 300 / strata and rank.max() >= 300 - 300 / strata  # fastest and slowest strata
    a, b = (pick_models(log_ms, class_us, 20, seed=s, within="random") for s in (0, 1))
    assert not np.array_equal(a, b) and len(set(a.tolist())) == 20  # a stratified random sample, by seed
    np.testing.assert_array_equal(a, pick_models(log_ms, class_us, 20, seed=0, within="random"))
    with pytest.raises(InvalidInputError, match="n=301"):
        pick_models(log_ms, class_us, 301)
    g = _platform(40, seed=11)[0]
    picks = pick_for_kernels(base, g, 8, seed=0)
    ms = base.predict(g)
    assert len(set(picks.tolist())) == 8 and picks.min() >= 0 and picks.max() < 40
    rank = np.argsort(np.argsort(ms))[picks]
    assert rank.min() < 40 / 3 and rank.max() >= 40 - 40 / 3  # round(sqrt(8)) = 3 latency strata


def test_the_picker_takes_every_candidate_when_asked_for_all_and_medoids_need_no_seed():
    rng = np.random.default_rng(1)
    log_ms, class_us = rng.normal(size=30), rng.gamma(0.5, size=(30, len(CLASSES)))
    np.testing.assert_array_equal(pick_models(log_ms, class_us, 30), np.arange(30))
    np.testing.assert_array_equal(pick_models(log_ms, class_us, 9), pick_models(log_ms, class_us, 9, seed=5))
    with pytest.raises(InvalidInputError, match="within='center'"):
        pick_models(log_ms, class_us, 9, within="center")
