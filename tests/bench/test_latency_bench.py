"""The latency benchmark: splits, caps, resumable job cache, aggregation, interval coverage, files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from archcast.bench import latency as bench
from archcast.errors import ArchcastError, InvalidInputError
from archcast.frontends.onnx import load_onnx
from archcast.zoo import export_sample, get_family
from tests.conftest import synthetic_kernel_times


def test_calibrate_k_and_bad_config():
    r = np.linspace(0, 10, 101)
    assert bench.calibrate_k(r, 0.9) == pytest.approx(9.0)
    with pytest.raises(InvalidInputError, match="protocol"):
        bench.LatencyBenchConfig(dataset="x", protocols=["nope"])
    with pytest.raises(ArchcastError, match="unknown latency predictor .nope.; valid: archcast"):
        bench.LatencyBenchConfig(dataset="x", predictors=["nope"])


@pytest.fixture()
def synthetic(monkeypatch):
    """Twelve tiny graphs of three families, installed as the loaded data set 'synthetic'."""
    graphs, fams = [], []
    for f in ("gcn", "graphsage", "nb201"):
        for s in range(4):
            graphs.append(load_onnx(export_sample(get_family(f).sample(s)), name=f"{f}-{s}"))
            fams.append(f)
    y = np.array([0.02 * len(g.nodes) + g.flops / 5e7 + 0.05 for g in graphs])
    # each graph stands in for its own runtime graph, with per-node times adding up to y
    monkeypatch.setattr(bench, "_DATA", {"path": "synthetic", "graphs": graphs, "y": y,
                                         "families": np.array(fams), "fingerprint": "test",
                                         "runtime": (graphs, synthetic_kernel_times(graphs))})
    return y


def test_kernel_predictors_get_runtime_graphs_and_kernel_times(synthetic, tmp_path):
    cfg = bench.LatencyBenchConfig(dataset="synthetic", predictors=["kernels-prior", "flops-linear"], seeds=1,
                                   jobs=1, protocols=["lofo"], predictor_kw={"kernels-prior": {"min_kernels": 3}})
    res = bench.run_latency_bench(cfg, tmp_path / "jobs.jsonl", progress=False, log=lambda _m: None)
    # the synthetic latency is additive over nodes, so the kernel sum recovers it on unseen families
    assert res["protocols"]["lofo"]["kernels-prior"]["summary"]["mape"]["mean"] < 5.0
    # the per-kernel law is the one the synthetic times follow: kernels agree, top-5 sets too
    k = res["protocols"]["lofo"]["kernels-prior"]["kernels"]
    assert k["median_kernel_mape"]["mean"] < 0.05 and k["top5_overlap"]["mean"] > 0.9
    assert "kernels" not in res["protocols"]["lofo"]["flops-linear"]
    assert "top-5 overlap" in bench.markdown(res)


def test_run_resume_aggregate_and_write(synthetic, tmp_path):
    cfg = bench.LatencyBenchConfig(dataset="synthetic", predictors=["flops-linear", "archcast"], seeds=2, jobs=1,
                                   predictor_kw={"archcast": dict(width=8, n_blocks=1, head_hidden=8, epochs=1,
                                                                  ensemble=1)})
    cache = tmp_path / "jobs.jsonl"
    logs: list[str] = []
    res = bench.run_latency_bench(cfg, cache, progress=False, log=logs.append)
    n_jobs = 2 * 2 * (1 + 3 + 2)  # predictors x seeds x (in-family + 3 family folds + 2 group folds)
    assert len(cache.read_text().splitlines()) == n_jobs
    again = bench.run_latency_bench(cfg, cache, progress=False, log=logs.append)
    assert "0 to run" in logs[-1] and len(cache.read_text().splitlines()) == n_jobs
    for proto in ("in-family", "lofo", "logo"):
        for p in ("flops-linear", "archcast"):
            s = res["protocols"][proto][p]["summary"]
            assert 0 <= s["mape"]["mean"] < 100 and s["mape"] == again["protocols"][proto][p]["summary"]["mape"]
            assert set(res["protocols"][proto][p]["per_family_mape"]) == {"gcn", "graphsage", "nb201"}
    iv = res["protocols"]["lofo"]["archcast"]["interval"]
    assert iv["ensemble"].startswith("the 2 seeds") and 0 <= iv["nested"][0] <= 1
    assert "interval" not in res["protocols"]["lofo"]["flops-linear"]
    paths = bench.write_results(res, tmp_path / "out", "t")
    assert [p.suffix for p in paths] == [".json", ".md", ".png", ".png", ".png"]
    data = json.loads(paths[0].read_text())
    text = paths[1].read_text()
    assert data["n_models"] == 12 and "Leave-one-family-out" in text and "Leave-one-group-out" in text
    # the graph group held out: its test models are exactly the two graph families
    logo = [r for r in (json.loads(line) for line in cache.read_text().splitlines())
            if r["protocol"] == "logo" and r["fold"] == "graph"]
    assert logo and all(len(r["test"]) == 8 and r["n_train"] + r["n_val"] == 4 for r in logo)


def test_conformal_quantile_and_coverage_on_synthetic_errors():
    rng = np.random.default_rng(0)
    assert bench.conformal_quantile(np.arange(1.0, 10.0), 0.9) == 9.0  # ceil(10 * 0.9) = 9th of 9
    assert bench.conformal_quantile(np.arange(1.0, 20.0), 0.5) == 10.0
    # folds whose log errors come from one distribution: coverage close to the level
    y = np.exp(rng.normal(size=4000))
    runs = []
    for seed in range(2):
        for f in range(8):
            te = np.arange(f * 500, (f + 1) * 500)
            runs.append({"fold": f"f{f}", "seed": seed, "test": te.tolist(),
                         "pred": (y[te] * np.exp(rng.normal(scale=0.1, size=500))).tolist()})
    c = bench.conformal_coverage(runs, y, seeds=2)
    assert abs(c["coverage"]["mean"] - 0.9) < 0.02
    assert c["factor"]["mean"] == pytest.approx(np.exp(1.645 * 0.1), rel=0.05)
    # one fold with 3x larger errors is under-covered: the calibration never saw it
    te = np.arange(0, 500)
    runs[0]["pred"] = (y[te] * np.exp(rng.normal(scale=0.3, size=500))).tolist()
    assert bench.conformal_coverage(runs, y, seeds=1)["per_fold"]["f0"] < 0.6
