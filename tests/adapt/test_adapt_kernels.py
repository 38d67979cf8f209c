"""archcast adapt for the kernel-level predictor (:mod:`archcast.adapt.kernels_run`): the labels, a
real run on five tiny models (saved where predict finds it, resumable), a synthetic slow-down
recovered from a tiny base, the CLI's choice of predictor and its one-line errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from archcast.adapt.kernels_run import adapt_kernels, label_of
from archcast.adapt.run import candidate_pool, platform_from_name
from archcast.cli import main
from archcast.errors import InvalidInputError
from archcast.predictors import create_predictor
from archcast.predictors.latency.kernels import KernelLatency
from archcast.service.checkpoints import ENV_VAR, kernel_predictor_dir, shipped_dir
from archcast.store import Store
from tests.conftest import synthetic_kernel_times

FAMS = ["gcn", "graphsage", "nb201"]
FAST = {"min_runs": 3, "min_time_s": 0.01, "warmup_runs": 1, "warmup_s": 0.0}
NEW = "ort-cpu-1t-disable"


@pytest.fixture
def predictors(tmp_path, monkeypatch):
    """An empty user predictor directory: the base is the shipped kernels-ort-cpu-1t."""
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "predictors"))
    return tmp_path


def test_the_label_is_the_thread_cpu_minimum_on_one_thread_else_the_wall_clock_minimum():
    row = SimpleNamespace(cpu_ms_min=1.5, latency_ms_min=2.0, latency_ms_median=2.5)
    assert label_of(row, 1) == (1.5, "cpu_ms_min")
    assert label_of(row, 2) == (2.0, "latency_ms_min")  # another thread's work is not in this thread's CPU time
    assert label_of(SimpleNamespace(cpu_ms_min=None, latency_ms_min=None, latency_ms_median=2.5), 1) == \
        (2.5, "latency_ms_median")
    assert label_of(SimpleNamespace(cpu_ms_min=0.0, latency_ms_min=None, latency_ms_median=None), 1) == (None, None)


def test_adapt_kernels_measures_five_models_saves_where_predict_finds_it_and_resumes(predictors):
    from archcast.service.predict import predict
    from archcast.zoo import export_sample

    store = Store(predictors / "a.db")
    kw = dict(families=FAMS, pool_per_family=3, workers=0, db=store, measure_kw=FAST, progress=False)
    rep = adapt_kernels(NEW, 5, **kw)
    assert rep.pool_size == 9 and rep.n_runtime == 9 and len(rep.selected) == 5 and len(set(rep.fingerprints)) == 5
    assert rep.profile.ok == 5 and all(y is not None and y > 0 for y in rep.latency_ms)
    assert rep.labels == "cpu_ms_min" and rep.base_dir == shipped_dir() / "kernels-ort-cpu-1t"
    assert rep.saved_to == kernel_predictor_dir(NEW) == kernel_predictor_dir(NEW, user=True)
    info = rep.adapt_info
    assert info["n_networks"] == 5 and not info["from_kernel_times"]
    assert info["loo_mape_chosen"] <= info["loo_mape_global"]

    pred = KernelLatency.load(rep.saved_to)  # the shipped base has NumPy trees: they were saved again
    cfg = pred.checkpoint_config_
    assert cfg["platform"]["name"] == NEW and cfg["platform"]["graph_opt_level"] == "disable"
    assert (cfg["adapted_from"], cfg["budget"], cfg["correction_file"]) == ("ort-cpu-1t", 5, "correction.lgbm.txt")
    assert [s["label"] for s in cfg["adapt"]["samples"]] == ["cpu_ms_min"] * 5
    assert cfg["adapt_info"]["chosen"] == info["chosen"] and "reference_canary_ms" not in cfg
    base_cfg = json.loads((shipped_dir() / "kernels-ort-cpu-1t" / "config.json").read_text())
    assert cfg["interval"] == base_cfg["interval"] and cfg["train_ops"] == base_cfg["train_ops"]
    text = "\n".join(rep.lines())
    assert "5 ok" in text and "cpu_ms_min" in text and str(rep.saved_to) in text
    assert json.loads(json.dumps(rep.to_dict()))["label"] == "cpu_ms_min"

    # archcast predict --platform ort-cpu-1t-disable uses it, on the new platform's runtime graph
    data = export_sample(rep.selected[0], batch_size=1, weight_free=True)
    out = predict(data, platform=NEW)
    assert out.predictor == "kernels" and out.platform == NEW
    from archcast.service.kernel_predict import cached_runtime_graph

    rg = cached_runtime_graph(data, platform_from_name(NEW)).graph
    assert out.latency_ms == pytest.approx(float(pred.predict([rg])[0]), rel=1e-9)

    again = adapt_kernels(NEW, 5, **kw)  # the same picks, nothing measured twice
    assert again.fingerprints == rep.fingerprints and again.profile.skipped == 5 and again.profile.ok == 0
    assert again.latency_ms == rep.latency_ms


# --------------------------------------------------------------------------- a known slow-down
SLOWDOWN = 2.5


@pytest.fixture(scope="module")
def runtime_pool():
    """The pool of FAMS (2 per family) with each candidate's runtime graph on NEW."""
    from archcast.service.kernel_predict import cached_runtime_graph
    from archcast.zoo import export_sample

    pool = candidate_pool(FAMS, per_family=2, start_seed=0)
    plat = platform_from_name(NEW)
    return {s.key: (s, g, cached_runtime_graph(export_sample(s), plat).graph) for s, g in pool}


@pytest.fixture
def tiny_base(tmp_path, runtime_pool):
    """A ``kernels-prior`` fitted on the runtime graphs with synthetic kernel times, saved and loaded."""
    graphs = [rg for _, _, rg in runtime_pool.values()]
    times = synthetic_kernel_times(graphs)
    y = np.array([sum(t.values()) / 1000.0 + 0.05 for t in times])
    fitted = create_predictor("kernels-prior", task="latency", min_kernels=3).fit(graphs, y, graphs, y,
                                                                                  kernel_times=times)
    return tmp_path / "tiny-base", KernelLatency.load(fitted.save(tmp_path / "tiny-base"))


@pytest.fixture
def fake_measure(monkeypatch, runtime_pool, tiny_base):
    """profile_samples replaced: every sample 'measures' SLOWDOWN x the tiny base's prediction."""
    from archcast.collect import runner
    from archcast.collect.runner import ProfileReport
    from archcast.profile.measurement import Measurement

    _, base = tiny_base

    def fake(samples, store, platform, batch_size=1, workers=1, progress=True, *, measure_kw=None, **_):
        rep = ProfileReport(total=len(samples))
        for s in samples:
            _, g, rg = runtime_pool[s.key]
            fp = store.add_graph(g, s)
            if store.has_measurement(fp, platform.platform_id, 1):
                rep.skipped += 1
                continue
            ms = SLOWDOWN * float(base.predict([rg])[0])
            store.record(fp, platform, Measurement.from_times([ms] * 3, cpu_times_ms=[ms] * 3, warmup_runs=0,
                                                              batch_size=1))
            rep.ok += 1
        return rep

    monkeypatch.setattr(runner, "profile_samples", fake)


def test_a_uniform_slowdown_is_recovered_from_the_latencies(predictors, tiny_base, fake_measure, runtime_pool):
    base_dir, base = tiny_base
    rep = adapt_kernels(NEW, 5, base_dir=base_dir, families=FAMS, pool_per_family=2, start_seed=0,
                        db=predictors / "s.db", out=predictors / "out", progress=False)
    assert rep.base_dir == base_dir and rep.saved_to == predictors / "out" and rep.profile.ok == 5
    assert rep.base_mape == pytest.approx(1 - 1 / SLOWDOWN, rel=1e-6)  # the base is SLOWDOWN x too fast
    adapted = KernelLatency.load(rep.saved_to)
    picked = [runtime_pool[s.key][2] for s in rep.selected]
    y = np.array(rep.latency_ms)
    moved = float(np.mean(np.abs(adapted.predict(picked) / y - 1.0)))
    assert moved < 0.05 * rep.base_mape  # the predictions moved onto the measured values
    assert rep.adapt_info["loo_mape_chosen"] <= rep.adapt_info["loo_mape_global"] < 0.05
    others = [rg for k, (_, _, rg) in runtime_pool.items() if k not in {s.key for s in rep.selected}]
    np.testing.assert_allclose(adapted.predict(others), SLOWDOWN * base.predict(others), rtol=0.05)


def test_cli_adapt_with_kernels_runs_and_prints_json(predictors, tiny_base, fake_measure, capsys):
    base_dir, _ = tiny_base
    argv = ["adapt", "--platform", NEW, "--base-dir", str(base_dir), "--budget", "5", "--families", *FAMS,
            "--pool-per-family", "2", "--start-seed", "0", "--db", str(predictors / "c.db"), "--selection", "k-medoids",
            "--format", "json", "--no-progress"]
    assert main(argv) == 0  # auto: the base directory holds a kernels checkpoint
    captured = capsys.readouterr()
    rep = json.loads(captured.out)
    assert rep["predictor"] == "kernels" and rep["saved_to"] == str(kernel_predictor_dir(NEW))
    assert len(rep["selected"]) == 5 and rep["profiled"]["ok"] == 5 and rep["label"] == "cpu_ms_min"
    assert rep["loo_mape_chosen"] <= rep["loo_mape_global"]
    assert "--selection applies to --predictor archcast" in captured.err  # said, then ignored


def test_auto_picks_kernels_where_the_base_has_a_kernels_checkpoint(predictors, tmp_path):
    from archcast.cli.adapt import _predictor

    args = SimpleNamespace(predictor="auto", base_dir=None, base_platform="ort-cpu-1t")
    assert _predictor(args) == "kernels"  # the shipped kernels-ort-cpu-1t
    assert _predictor(SimpleNamespace(**(vars(args) | {"base_platform": "ort-cpu-9t"}))) == "archcast"
    assert _predictor(SimpleNamespace(**(vars(args) | {"base_dir": str(tmp_path)}))) == "archcast"
    assert _predictor(SimpleNamespace(**(vars(args) | {"predictor": "archcast"}))) == "archcast"


def test_the_base_platform_on_another_cpu_model_is_adapted_to(predictors, monkeypatch):
    import archcast.adapt.kernels_run as kr
    import archcast.profile.machine as machine
    from archcast.errors import UnknownNameError

    base, _ = kr._load_base("ort-cpu-1t", None)
    device = base.checkpoint_config_["platform"]["device"]
    monkeypatch.setattr(machine, "cpu_model", lambda: device)
    assert kr._other_cpu(base) is False
    with pytest.raises(InvalidInputError, match="is the base platform"):
        adapt_kernels("ort-cpu-1t", 5, progress=False)
    monkeypatch.setattr(machine, "cpu_model", lambda: "Other CPU")
    assert kr._other_cpu(base) is True
    # past the check: it goes on to build the pool (an unknown family stops it there, before any export)
    with pytest.raises(UnknownNameError, match="no-such-family"):
        adapt_kernels("ort-cpu-1t", 5, families=["no-such-family"], progress=False)


def test_adapt_kernels_refuses_bad_requests(predictors, monkeypatch):
    import archcast.adapt.kernels_run as kr

    monkeypatch.setattr(kr, "_other_cpu", lambda base: False)  # this machine is the base's CPU model
    with pytest.raises(InvalidInputError, match="budget must be an integer >= 5"):
        adapt_kernels(NEW, 4, progress=False)
    with pytest.raises(InvalidInputError, match="is the base platform"):
        adapt_kernels("ort-cpu-1t", 5, progress=False)
    with pytest.raises(InvalidInputError, match="accepted forms"):
        adapt_kernels("ort-cpu-2x", 5, progress=False)
    with pytest.raises(InvalidInputError, match=r"no kernel-level predictor \(kernels-ort-cpu-9t\)"):
        adapt_kernels("ort-cpu-2t", 5, base_platform="ort-cpu-9t", progress=False)


@pytest.mark.parametrize("argv, message", [
    (["--platform", NEW, "--budget", "3"], "--budget must be >= 5"),
    (["--platform", "ort-cpu-1t", "--predictor", "kernels"], "is the base platform"),
    (["--platform", "ort-cpu-2x", "--predictor", "kernels"], "accepted forms"),
    (["--platform", "ort-cpu-2t", "--predictor", "kernels", "--base-platform", "ort-cpu-9t"],
     "no kernel-level predictor (kernels-ort-cpu-9t)"),
    (["--platform", "ort-cpu-2t", "--predictor", "kernels", "--base-dir", "/nonexistent/ck"], "does not exist"),
    (["--platform", "ort-cpu-2t", "--base-platform", "ort-cpu-9t"],  # auto -> archcast: it has none either
     "no latency predictor for the base platform 'ort-cpu-9t'"),
])
def test_cli_adapt_kernels_errors_are_one_line(predictors, capsys, monkeypatch, argv, message):
    import archcast.adapt.kernels_run as kr

    monkeypatch.setattr(kr, "_other_cpu", lambda base: False)
    assert main(["adapt", *argv, "--db", str(predictors / "e.db"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("archcast: error:")


def test_far_from_training_reference_of_an_adapted_checkpoint(tmp_path, runtime_pool, monkeypatch):
    import archcast.adapt.kernels_run as kr
    from archcast.predictors.latency.far import FarFromTraining, kernel_ood_features

    base_dir = shipped_dir() / "kernels-ort-cpu-1t"
    base_cfg = json.loads((base_dir / "config.json").read_text())
    pool = [(s, g) for s, g, _ in runtime_pool.values()]
    runtime = [rg for _, _, rg in runtime_pool.values()]
    have = list(range(len(pool)))
    # the same runtime graphs (the base platform's settings on another CPU): the base's reference, copied
    same = kr._far_reference(base_cfg, base_dir, platform_from_name("ort-cpu-1t"), pool, runtime, have, tmp_path / "a")
    assert same["threshold"] == base_cfg["ood"]["threshold"] and same["measured"] == base_cfg["ood"]["measured"]
    assert "base checkpoint" in same["source"]
    assert (tmp_path / "a" / same["file"]).read_bytes() == (base_dir / base_cfg["ood"]["file"]).read_bytes()
    # another optimisation level: another kernel mix, so a reference fitted on the pool's runtime graphs
    assert kr._far_reference(base_cfg, base_dir, platform_from_name(NEW), pool, runtime, have, tmp_path / "b") is None
    monkeypatch.setattr(kr, "MIN_POOL_REFERENCE", len(pool))
    other = kr._far_reference(base_cfg, base_dir, platform_from_name(NEW), pool, runtime, have, tmp_path / "b")
    assert other["n_reference"] == len(pool) and other["n_families"] == len(FAMS) and "measured" not in other
    assert "adapt pool" in other["source"] and other["k"] == base_cfg["ood"]["k"]
    ref = FarFromTraining.load(tmp_path / "b", other["file"])
    assert ref.threshold_ == pytest.approx(other["threshold"])
    x = [kernel_ood_features(rg, g.flops, g.memory_bytes, g.params) for (_, g), rg in zip(pool, runtime)]
    assert np.all(ref.score(np.array(x)) < ref.score(np.array(x) + 10.0))  # far rows score farther
