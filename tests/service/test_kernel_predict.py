"""Predicting from what runs: ``archcast predict`` with a kernel-level checkpoint (runtime graph,
kernel breakdown with origins, conformal interval, routing and its errors)."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest

import archcast
from archcast.cli import main
from archcast.errors import InvalidInputError
from archcast.predictors import create_predictor
from archcast.profile.platform import default_platform
from archcast.profile.runtime_graph import node_names, runtime_graph
from archcast.service import kernel_predict
from archcast.service.report import format_prediction
from archcast.zoo import export_sample, get_family

FLOOR = 0.1


def _times(g):
    return {n.name: 5.0 + n.flops / 5e4 for n in g.nodes}


@pytest.fixture(scope="module")
def kenv(tmp_path_factory):
    root = tmp_path_factory.mktemp("kernels")
    models = [export_sample(get_family(f).sample(s)) for f, s in
              [("nb201", 0), ("nb201", 1), ("gcn", 0), ("gcn", 1), ("graphsage", 0), ("graphsage", 1)]]
    rgs = [runtime_graph(m).graph for m in models]
    times = [_times(g) for g in rgs]
    y = np.array([sum(t.values()) / 1000.0 for t in times])
    pred = create_predictor("kernels-prior", task="latency", min_kernels=3)
    pred.fit(rgs[:4], y[:4], rgs[4:], y[4:], kernel_times=times[:4])
    d = pred.save(root / "kernels-test", extra={
        "platform": default_platform().to_dict(),
        "interval": {"level": 0.9, "k": 0.0, "floor": FLOOR, "source": "test"},
        "train_ops": sorted({n.op_type for g in rgs for n in g.nodes})})
    model = root / "cell.onnx"
    model.write_bytes(export_sample(get_family("nb201").sample(3)))
    return {"dir": d, "model": model, "pred": pred, "rgs": rgs, "models": models}


def test_the_breakdown_lists_the_kernels_that_run_and_what_they_came_from(kenv):
    out = archcast.predict(str(kenv["model"]), predictor=kenv["dir"])
    rg = runtime_graph(str(kenv["model"]))
    assert out.predictor == "kernels" and [o["name"] for o in out.operators] == [n.name for n in rg.graph.nodes]
    assert sum(o["ms"] for o in out.operators) == pytest.approx(out.latency_ms, rel=1e-9)
    assert out.latency_ms == pytest.approx(float(kenv["pred"].predict([rg.graph])[0]), rel=1e-9)
    assert out.high_ms / out.latency_ms == pytest.approx(math.exp(FLOOR))
    assert out.low_ms / out.latency_ms == pytest.approx(math.exp(-FLOOR))
    # every operator of the user's model is in one kernel's origin or eliminated by the runtime
    names = node_names(onnx.load(str(kenv["model"])).graph)
    mapped = [x for o in out.operators for x in o["origin"]]
    assert sorted(mapped + list(rg.eliminated)) == sorted(names)
    assert out.graph["n_kernels"] == len(rg.graph.nodes) < out.graph["n_nodes"]
    text = format_prediction(out)
    assert "kernels the runtime executes" in text and "runs (your operators)" in text


def test_cli_routes_to_the_kernel_checkpoint_and_network_opts_out(kenv, capsys):
    assert main(["predict", str(kenv["model"]), "--predictor", str(kenv["dir"]), "--no-store"]) == 0
    assert "kernels the runtime executes" in capsys.readouterr().out
    assert kernel_predict.is_kernel_checkpoint(kenv["dir"])
    from archcast.service.predict import kernel_route

    assert kernel_route(str(kenv["model"]), kenv["dir"], None) == kenv["dir"]
    assert kernel_route(str(kenv["model"]), None, "no-kernel-platform") is None
    assert kernel_route(str(kenv["model"]), None, None, network=True) is None


def test_a_graph_json_cannot_go_to_the_kernel_predictor(kenv, tmp_path):
    from archcast.frontends.onnx import load_onnx

    path = tmp_path / "g.json"
    path.write_text(load_onnx(kenv["model"].read_bytes()).to_json())
    with pytest.raises(InvalidInputError, match="needs an ONNX model"):
        archcast.predict(str(path), predictor=kenv["dir"])


def test_runtime_graphs_are_cached_and_a_damaged_entry_is_rebuilt(kenv, tmp_path, monkeypatch):
    monkeypatch.setenv(kernel_predict.CACHE_ENV, str(tmp_path))
    calls = []

    def build(m, p):
        calls.append(1)
        return runtime_graph(m, p)

    plat = default_platform()
    first = kernel_predict.cached_runtime_graph(str(kenv["model"]), plat, build)
    again = kernel_predict.cached_runtime_graph(str(kenv["model"]), plat, build)
    assert len(calls) == 1 and again.graph.fingerprint() == first.graph.fingerprint()
    assert again.origin == first.origin and again.eliminated == first.eliminated
    (entry,) = (tmp_path / "runtime-graphs").iterdir()
    entry.write_text("{not json")
    kernel_predict.cached_runtime_graph(str(kenv["model"]), plat, build)
    assert len(calls) == 2


def test_a_prediction_reads_the_model_file_once(kenv, tmp_path, monkeypatch):
    """Both caches key on one read and one hash of the file; a miss builds from those bytes."""
    import hashlib
    from pathlib import Path

    monkeypatch.setenv(kernel_predict.CACHE_ENV, str(tmp_path))
    model = tmp_path / "copy.onnx"
    model.write_bytes(kenv["model"].read_bytes())
    reads, hashed = [], []
    read_bytes, sha256 = Path.read_bytes, hashlib.sha256
    monkeypatch.setattr(Path, "read_bytes", lambda p: reads.append(p.name) or read_bytes(p))
    monkeypatch.setattr(hashlib, "sha256", lambda data=b"", **k: hashed.append(len(data)) or sha256(data, **k))
    size = model.stat().st_size
    first = archcast.predict(str(model), predictor=kenv["dir"])  # both caches miss
    assert reads.count("copy.onnx") == 1 and hashed.count(size) == 1
    again = archcast.predict(str(model), predictor=kenv["dir"])  # both hit
    assert reads.count("copy.onnx") == 2 and hashed.count(size) == 2
    assert again.latency_ms == first.latency_ms and again.operators == first.operators
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.onnx", "graphs", "runtime-graphs"]


def _with_reference(kenv, root, threshold_scale, measured=None):
    """A copy of the tiny checkpoint with a far-from-training reference of its four training models
    (nb201 and gcn); its threshold ``threshold_scale`` times the test cell's distance."""
    import json
    import shutil

    from archcast.frontends.onnx import load_onnx
    from archcast.predictors.latency.far import FarFromTraining, kernel_ood_features

    d = root / "kernels-ood"
    shutil.copytree(kenv["dir"], d)
    users = [load_onnx(m) for m in kenv["models"][:4]]
    x = np.stack([kernel_ood_features(rg, g.flops, g.memory_bytes, g.params) for rg, g in zip(kenv["rgs"], users)])
    ref = FarFromTraining(k=2).fit(x, ["nb201", "nb201", "gcn", "gcn"])
    ref.save(d)
    cell = load_onnx(kenv["model"].read_bytes())
    dist = ref.score(kernel_ood_features(runtime_graph(str(kenv["model"])).graph, cell.flops, cell.memory_bytes,
                                         cell.params))
    cfg = json.loads((d / "config.json").read_text())
    cfg["ood"] = {"file": "kernel_ood.npz", "k": 2, "q": 0.95, "threshold": dist * threshold_scale,
                  **({"measured": measured} if measured else {})}
    (d / "config.json").write_text(json.dumps(cfg))
    return d, dist


def test_a_model_far_from_the_training_models_is_warned_with_the_measured_errors(kenv, tmp_path):
    plain = archcast.predict(str(kenv["model"]), predictor=kenv["dir"])
    assert plain.ood_distance is None and plain.ood_threshold is None  # no reference: as before
    assert not any("far from the training data" in w for w in plain.warnings)
    d, dist = _with_reference(kenv, tmp_path, 0.5, {"mape_warned": 0.265, "mape_unwarned": 0.109})
    out = archcast.predict(str(kenv["model"]), predictor=d)
    assert out.ood_distance == pytest.approx(dist) and out.ood_threshold == pytest.approx(dist / 2)
    (far,) = [w for w in out.warnings if w.startswith("far from the training data")]
    assert far == (f"far from the training data: kernel-mix/size distance {dist:.3g} > threshold {dist / 2:.3g} "
                   "(on held-out families such models had 26.5 % MAPE vs 10.9 %)")
    assert out.latency_ms == plain.latency_ms and out.to_dict()["ood_distance"] == pytest.approx(dist)
    assert "far from the training data" in format_prediction(out)


def test_a_model_near_the_training_models_is_not_warned_and_a_missing_reference_file_is_named(kenv, tmp_path):
    import os

    from archcast.errors import CheckpointError

    d, dist = _with_reference(kenv, tmp_path, 2.0)
    out = archcast.predict(str(kenv["model"]), predictor=d)
    assert out.ood_distance == pytest.approx(dist) and not any("far from" in w for w in out.warnings)
    (d / "kernel_ood.npz").unlink()
    cfg = d / "config.json"
    later = cfg.stat().st_mtime_ns + 10**9
    os.utime(cfg, ns=(later, later))  # a new mtime: the checkpoint is loaded again
    with pytest.raises(CheckpointError, match="kernel_ood.npz"):
        archcast.predict(str(kenv["model"]), predictor=d)
