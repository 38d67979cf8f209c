"""archcast adapt: platform names, k-center selection, fine-tuning, the whole run on a tiny budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from archcast.adapt.run import (
    adapt,
    candidate_pool,
    fine_tune,
    from_scratch,
    platform_from_name,
    select_diverse,
    select_representative,
)
from archcast.cli import main
from archcast.errors import InvalidInputError
from archcast.predictors.latency.archcast import ArchcastLatency
from archcast.profile.measurement import BackendUnavailableError
from archcast.service.checkpoints import (
    ENV_VAR,
    load_platform_predictor,
    predictor_dir_for,
)
from archcast.store import Store

FAMS = ["gcn", "graphsage"]
FAST = {"min_runs": 3, "min_time_s": 0.01, "warmup_runs": 1, "warmup_s": 0.0}
TINY = dict(width=16, n_blocks=1, head_hidden=16, epochs=15, ensemble=2)


def _mape(y, p) -> float:
    return float(np.mean(np.abs(np.asarray(p) - y) / y))


@pytest.fixture(scope="module")
def pool():
    return candidate_pool(FAMS, per_family=6, start_seed=0)


@pytest.fixture(scope="module")
def base(pool):
    graphs = [g for _, g in pool]
    y = _synthetic_ms(graphs)
    return ArchcastLatency(seed=0, **TINY).fit(graphs[:-3], y[:-3], graphs[-3:], y[-3:])


def _synthetic_ms(graphs) -> np.ndarray:
    return np.array([0.05 * len(g.nodes) + 0.02 * np.sqrt(g.flops / 1e6) for g in graphs])


# --------------------------------------------------------------------------- platform names
@pytest.mark.parametrize("name, threads, level", [
    ("ort-cpu-1t", 1, "all"), ("ort-cpu-2t", 2, "all"), ("ort-cpu-16t", 16, "all"),
    ("ort-cpu-1t-disable", 1, "disable"), ("ort-cpu-4t-basic", 4, "basic"), ("ort-cpu-1t-extended", 1, "extended"),
])
def test_platform_from_name(name, threads, level):
    p = platform_from_name(name)
    assert (p.name, p.threads, p.graph_opt_level, p.backend) == (name, threads, level, "onnxruntime-cpu")


@pytest.mark.parametrize("name", ["", "ort-cpu", "ort-cpu-0t", "ort-cpu-01t", "ort-cpu-1", "ort-cpu-1t-all",
                                  "ort-cpu-1t-fast", "ort-gpu-1t", "ORT-CPU-1T", " ort-cpu-1t", "ort-cpu-1t-"])
def test_platform_from_name_rejects(name):
    with pytest.raises(InvalidInputError, match=r"accepted forms: ort-cpu-<N>t; ort-cpu-<N>t-<level>"):
        platform_from_name(name)


def test_torch_cuda_platform_names_its_backend():
    with pytest.raises(BackendUnavailableError, match="torch-cuda"):
        platform_from_name("torch-cuda")


# --------------------------------------------------------------------------- selection
def _clusters(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)  # one dense blob + a few far points: random picks hit the blob
    return np.concatenate([rng.normal(0, 0.05, (180, 2)), rng.uniform(-5, 5, (20, 2))])


def _min_pairwise(x: np.ndarray) -> float:
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return float(d[np.triu_indices(len(x), 1)].min())


def _cover_radius(x: np.ndarray, idx: np.ndarray) -> float:
    return float(np.linalg.norm(x[:, None] - x[idx][None], axis=-1).min(axis=1).max())


def test_select_diverse_is_deterministic_distinct_and_spread():
    x = _clusters()
    a, b = select_diverse(x, 10, seed=0), select_diverse(x, 10, seed=0)
    assert a.dtype == np.int64 and a.shape == (10,) and len(set(a.tolist())) == 10
    np.testing.assert_array_equal(a, b)
    z = (x - x.mean(0)) / x.std(0)
    assert a[0] == int(np.argmin(np.linalg.norm(z, axis=1)))  # starts nearest the mean
    rng = np.random.default_rng(1)
    rand = [rng.choice(len(x), 10, replace=False) for _ in range(50)]
    assert _min_pairwise(x[a]) > max(_min_pairwise(x[r]) for r in rand)
    assert _cover_radius(x, a) < min(_cover_radius(x, r) for r in rand)
    # scale-free: a dimension in other units selects the same points
    np.testing.assert_array_equal(select_diverse(x * np.array([1000.0, 0.01]), 10), a)


def test_select_diverse_duplicates_small_pool_and_errors():
    x = np.array([[0.0, 0.0]] * 3 + [[1.0, 1.0]])
    idx = select_diverse(x, 4)
    assert sorted(idx.tolist()) == [0, 1, 2, 3]
    with pytest.warns(RuntimeWarning, match="budget 9 exceeds the 4 candidates"):
        assert sorted(select_diverse(x, 9).tolist()) == [0, 1, 2, 3]
    with pytest.raises(InvalidInputError, match="budget"):
        select_diverse(x, 0)
    with pytest.raises(InvalidInputError, match="NaN"):
        select_diverse(np.array([[np.nan, 0.0]]), 1)
    with pytest.raises(InvalidInputError, match=r"\[N, D\]"):
        select_diverse(np.zeros(5), 1)


# --------------------------------------------------------------------------- fine-tuning
def test_fine_tune_follows_a_slower_platform_and_leaves_the_base_alone(pool, base):
    graphs = [g for _, g in pool][:8]
    y2 = 2.0 * _synthetic_ms(graphs)  # a platform twice as slow
    before = base.predict(graphs)
    ft = fine_tune(base, graphs, y2, epochs=3, seed=0)
    gtr = [graphs[i] for i in ft.train_idx_]
    assert _mape(y2[ft.train_idx_], ft.predict(gtr)) < 0.5 * _mape(y2[ft.train_idx_], base.predict(gtr))
    assert ft.val_mape_ < ft.base_val_mape_
    assert len(ft.members_) == len(base.members_) and ft.hp["lr"] == 5e-4 and ft.hp["width"] == 16
    np.testing.assert_array_equal(base.predict(graphs), before)
    scratch = from_scratch(graphs, y2, template_hparams=TINY)
    assert np.isfinite(scratch.val_mape_) and list(scratch.val_idx_) == list(ft.val_idx_)
    with pytest.raises(InvalidInputError, match="latencies"):
        fine_tune(base, graphs, y2[:-1])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_fine_tune_keeps_the_shifted_base_when_training_hurts(pool, base):
    graphs = [g for _, g in pool][:8]
    y2 = 2.0 * _synthetic_ms(graphs)
    ft = fine_tune(base, graphs, y2, epochs=1, lr=5.0)  # a learning rate that wrecks the weights
    assert not ft.fine_tuned_ and ft.val_mape_ == ft.shift_val_mape_
    for net, ref in zip(ft.members_, base.members_):
        a, b = net.state_dict(), ref.state_dict()
        assert all((a[k] == b[k]).all() for k in a if k != "head.2.bias")
        assert float(a["head.2.bias"] - b["head.2.bias"]) > 0.3  # about log 2: the platform is 2x slower
    np.testing.assert_allclose(ft.embeddings(graphs), base.embeddings(graphs))


# --------------------------------------------------------------------------- the whole run
@pytest.fixture
def predictors(tmp_path, monkeypatch, base):
    import torch

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "predictors"))
    extra = {"platform": platform_from_name("ort-cpu-1t").to_dict(), "interval": {"k": 1.5},
             "train_ops": ["Conv"], "ood": {"threshold": 1.0}}
    base.save(predictor_dir_for("ort-cpu-1t"), extra=extra,
              extra_tensors={"x.reference": torch.zeros(3, 32)})
    return tmp_path


def test_adapt_end_to_end_and_resumes(predictors):
    store = Store(predictors / "a.db")
    kw = dict(families=FAMS, pool_per_family=4, workers=0, db=store, measure_kw=FAST, epochs=2, progress=False)
    rep = adapt("ort-cpu-1t-disable", 5, **kw)
    assert rep.pool_size == 8 and len(rep.selected) == 5 and len(set(rep.fingerprints)) == 5
    assert all(y is not None and y > 0 for y in rep.latency_ms) and rep.profile.ok == 5
    assert (rep.n_train, rep.n_val) == (3, 2) and np.isfinite(rep.val_mape) and np.isfinite(rep.base_val_mape)
    assert rep.saved_to == predictor_dir_for("ort-cpu-1t-disable")
    ok = {r.fingerprint for r in store.measurements(platform="ort-cpu-1t-disable", status="ok")}
    assert ok == set(rep.fingerprints)

    pred = load_platform_predictor("ort-cpu-1t-disable")
    cfg = pred.checkpoint_config_
    assert cfg["platform"]["name"] == "ort-cpu-1t-disable" and cfg["platform"]["graph_opt_level"] == "disable"
    assert cfg["platform"]["platform_id"] == rep.platform.platform_id
    assert (cfg["adapted_from"], cfg["budget"], cfg["interval"], cfg["train_ops"]) == ("ort-cpu-1t", 5, {"k": 1.5},
                                                                                          ["Conv"])
    if rep.fine_tuned:  # new embedding space: the base's OOD reference no longer applies
        assert "ood" not in cfg and pred.extra_tensors_ == {}
    else:
        assert cfg["ood"] == {"threshold": 1.0} and set(pred.extra_tensors_) == {"x.reference"}
    assert len(cfg["adapt"]["samples"]) == 5
    graphs = [store.graph(fp) for fp in rep.fingerprints]
    p = pred.predict(graphs)
    assert p.shape == (5,) and np.all(np.isfinite(p)) and np.all(p > 0)

    again = adapt("ort-cpu-1t-disable", 5, **kw)  # same pool (read back from the store), nothing measured twice
    assert again.fingerprints == rep.fingerprints and again.profile.skipped == 5 and again.profile.ok == 0
    assert "\n".join(again.lines()).count("5 from an earlier run") == 1


def test_adapt_refuses_bad_requests(predictors):
    with pytest.raises(InvalidInputError, match="is the base platform"):
        adapt("ort-cpu-1t", 5, progress=False)
    with pytest.raises(InvalidInputError, match="budget must be an integer >= 5"):
        adapt("ort-cpu-2t", 4, progress=False)
    with pytest.raises(InvalidInputError, match="no latency predictor for the base platform 'ort-cpu-9t'"):
        adapt("ort-cpu-2t", 5, base_platform="ort-cpu-9t", progress=False)


@pytest.mark.parametrize("argv, message", [
    (["--platform", "ort-cpu-1t"], "is the base platform"),
    (["--platform", "ort-cpu-2t", "--budget", "3"], "--budget must be >= 5"),
    (["--platform", "ort-cpu-2x"], "accepted forms"),
])
def test_cli_adapt_errors_are_one_line(predictors, capsys, monkeypatch, argv, message):
    import archcast.adapt.kernels_run as kr

    monkeypatch.setattr(kr, "_other_cpu", lambda base: False)  # this machine is the base's CPU model
    assert main(["adapt", *argv, "--db", str(predictors / "c.db"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("archcast: error:")


def test_cli_adapt_runs(predictors, capsys):
    out = predictors / "adapted"
    argv = ["adapt", "--platform", "ort-cpu-1t-basic", "--predictor", "archcast", "--budget", "5", "--families", *FAMS,
            "--pool-per-family", "3",
            "--workers", "0", "--min-runs", "3", "--min-time", "0.01", "--db", str(predictors / "c.db"),
            "--out", str(out), "--format", "json", "--no-progress"]
    assert main(argv) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["saved_to"] == str(out) and len(rep["selected"]) == 5 and rep["pool_size"] == 6
    assert rep["platform"]["name"] == "ort-cpu-1t-basic" and rep["profiled"]["ok"] == 5
    assert load_platform_predictor(path=out).checkpoint_config_["adapted_from"] == "ort-cpu-1t"


def test_select_representative_spans_latency_with_typical_members():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 4))
    emb[:5] *= 50  # a few outliers that k-center would grab first
    lat = np.exp(rng.uniform(-3, 3, 200))
    idx = select_representative(emb, lat, 10, seed=0)
    assert len(set(idx.tolist())) == 10
    np.testing.assert_array_equal(idx, select_representative(emb, lat, 10, seed=0))
    # one pick per latency decile, in order: the picks cover the whole range
    order = np.argsort(np.log(lat), kind="stable")
    strata = np.array_split(order, 10)
    assert [int(np.flatnonzero([i in s for s in strata])[0]) for i in idx] == list(range(10))
    assert not set(idx.tolist()) & set(range(5))  # medoids, not outliers
    assert set(select_diverse(emb, 10, seed=0).tolist()) & set(range(5))  # (k-center does take them)
    with pytest.raises(InvalidInputError, match="predicted latencies"):
        select_representative(emb, lat[:5], 3)
    with pytest.raises(InvalidInputError, match="> 0"):
        select_representative(emb, -lat, 3)


def test_fine_tune_runs_a_step_budget(pool, base):
    graphs = [g for _, g in pool]
    y2 = 2.0 * _synthetic_ms(graphs)
    few = fine_tune(base, graphs[:6], y2[:6], steps=12, seed=0)
    many = fine_tune(base, graphs, y2, steps=12, seed=0)
    # the same number of optimiser steps whatever the number of measured graphs
    assert few.history_[0]["steps"] == many.history_[0]["steps"] >= 12
    with pytest.raises(InvalidInputError, match="steps"):
        fine_tune(base, graphs, y2, steps=0)


def test_adapt_refuses_an_unknown_selection_before_any_work(tmp_path):
    with pytest.raises(InvalidInputError, match="selection 'farthest' is not one of"):
        adapt("ort-cpu-1t-disable", 10, selection="farthest", db=tmp_path / "s.db", progress=False)
