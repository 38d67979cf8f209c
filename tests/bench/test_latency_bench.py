"""The latency benchmark: splits, caps, resumable job cache, aggregation, interval coverage, files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from archcast.bench import latency as bench
from archcast.errors import ArchcastError, InvalidInputError
from archcast.frontends.onnx import load_onnx
from archcast.zoo import export_sample, get_family


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
    monkeypatch.setattr(bench, "_DATA", {"path": "synthetic", "graphs": graphs, "y": y,
                                         "families": np.array(fams), "fingerprint": "test"})
    return y


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
