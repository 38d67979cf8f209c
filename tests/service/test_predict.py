"""archcast.service.predict and ``archcast predict``: breakdown, interval, checks, store lookup, CLI."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from archcast.cli import main
from archcast.errors import CheckpointError, InvalidInputError
from archcast.frontends.onnx import load_onnx
from archcast.predictors.latency.archcast import ArchcastLatency
from archcast.profile import Measurement, Platform
from archcast.service import predict as service
from archcast.service import report
from archcast.zoo import export_sample, get_family

torch.set_num_threads(1)
PLATFORM = Platform("tiny-test", device="test-device", runtime_version="0")
TRAIN = [("gcn", 0), ("gcn", 1), ("graphsage", 0), ("graphsage", 1), ("nb201", 0), ("nb201", 1)]


def _graph(family: str, seed: int):
    return load_onnx(export_sample(get_family(family).sample(seed)), name=f"{family}-{seed}")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A tiny predictor saved as the user predictor of platform ``tiny-test``, and a test model."""
    root = tmp_path_factory.mktemp("latency")
    graphs = [_graph(f, s) for f, s in TRAIN]
    y = np.array([0.05 + 0.01 * len(g.nodes) + g.flops / 2e8 for g in graphs])
    pred = ArchcastLatency(width=16, n_blocks=1, head_hidden=16, epochs=2, ensemble=2)
    pred.fit(graphs, y, graphs[::2], y[::2])
    ref = pred.embeddings(graphs)
    dists = np.sqrt(((ref[:, None] - ref[None]) ** 2).sum(-1))
    extra = {"platform": PLATFORM.to_dict(), "interval": {"level": 0.9, "k": 1.645, "floor": 0.05},
             "ood": {"threshold": float(dists.max()) * 10 + 1.0},
             "train_ops": sorted({n.op_type for g in graphs for n in g.nodes})}
    directory = pred.save(root / "predictors" / "latency-tiny-test", extra=extra,
                          extra_tensors={"x.reference": torch.from_numpy(ref)})
    data = export_sample(get_family("nb201").sample(2))
    model = root / "cell.onnx"
    model.write_bytes(data)
    return {"root": root, "dir": directory, "model": model, "graph": load_onnx(data, name="cell"),
            "predictors": root / "predictors"}


@pytest.fixture(autouse=True)
def _no_user_state(env, monkeypatch):
    """The user predictor dir is the test's; the default store is a file that does not exist."""
    monkeypatch.setenv("ARCHCAST_PREDICTORS", str(env["predictors"]))
    monkeypatch.setenv("ARCHCAST_DB", str(env["root"] / "absent" / "none.db"))


def _fresh(env) -> ArchcastLatency:
    """A loaded copy whose checkpoint_config_ a test may edit (not the cached one)."""
    return ArchcastLatency.load(env["dir"])


def _cli(capsys, *args):
    rc = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(rc, err, *needles):
    assert rc != 0
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]


# ------------------------------------------------------------------------------ library
def test_breakdown_sums_to_total(env):
    g = env["graph"]
    p = service.predict_graph(g, env["dir"])
    assert p.platform == "tiny-test" and p.platform_id == PLATFORM.platform_id
    assert len(p.members_ms) == 2 and all(m > 0 for m in p.members_ms)
    assert sorted(o["index"] for o in p.operators) == list(range(len(g.nodes)))
    assert [o["index"] for o in p.operators] == g.topological_order()
    assert math.isclose(sum(o["ms"] for o in p.operators), p.latency_ms, rel_tol=1e-9)
    assert math.isclose(sum(o["share"] for o in p.operators), 1.0, rel_tol=1e-9)
    assert math.isclose(p.latency_ms, float(np.mean(p.members_ms)), rel_tol=1e-12)
    assert math.isclose(sum(p.by_op_type.values()), p.latency_ms, rel_tol=1e-9)
    assert list(p.by_op_type.values()) == sorted(p.by_op_type.values(), reverse=True)
    assert set(p.by_op_type) == set(g.op_counts())
    for o in p.operators:
        assert o["op_type"] == g.nodes[o["index"]].op_type and o["name"] == g.nodes[o["index"]].name
    # the batched path agrees with the per-operator sums (float32 network)
    batch = service.predict_graphs([g, _graph("gcn", 0)], env["dir"])
    assert batch.shape == (2,) and math.isclose(batch[0], p.latency_ms, rel_tol=1e-4)
    assert p.graph["fingerprint"] == g.fingerprint() and p.graph["n_nodes"] == len(g.nodes)
    assert p.unknown_ops == {} and p.unknown_share == 0.0 and p.warnings == [] and p.measured is None
    assert p.ood_distance is not None and p.ood_distance <= p.ood_threshold and p.predict_s > 0


def test_interval_contains_point_and_widens_with_k(env):
    g = env["graph"]
    pred = _fresh(env)
    widths = []
    for k in (0.0, 1.0, 3.0):
        pred.checkpoint_config_["interval"] = {"level": 0.9, "k": k, "floor": 0.05}
        p = service.predict_graph(g, pred)
        assert p.low_ms <= p.latency_ms <= p.high_ms and p.level == 0.9
        h = service.interval_half_width(p.members_ms, k, 0.05)
        assert math.isclose(p.high_ms, p.latency_ms * math.exp(h))
        assert math.isclose(p.low_ms, p.latency_ms * math.exp(-h))
        widths.append(p.high_ms / p.low_ms)
    assert math.isclose(widths[0], math.exp(0.1))  # k = 0: the floor alone
    assert widths[0] < widths[1] < widths[2]
    sigma = float(np.std(np.log([1.0, 2.0])))
    assert math.isclose(service.interval_half_width([1.0, 2.0], 2.0, 0.0), 2 * sigma)
    assert service.interval_half_width([5.0], 1.645, 0.1) == pytest.approx(0.1)
    del pred.checkpoint_config_["interval"]  # defaults: 90 %, k = 1.645, no floor
    p = service.predict_graph(g, pred)
    assert p.level == 0.9
    assert math.isclose(p.high_ms / p.latency_ms, math.exp(service.interval_half_width(p.members_ms)))
    pred.checkpoint_config_["interval"] = {"k": -1}
    with pytest.raises(CheckpointError, match="k >= 0"):
        service.predict_graph(g, pred)


def test_warnings_far_from_training_and_unseen_ops(env):
    pred = _fresh(env)
    pred.checkpoint_config_["ood"] = {"threshold": 0.0}
    pred.checkpoint_config_["train_ops"] = ["Conv"]
    p = service.predict_graph(env["graph"], pred)
    assert p.ood_distance > 0 and p.ood_threshold == 0.0
    far = [w for w in p.warnings if "far from the training data" in w]
    assert len(far) == 1 and f"{p.ood_distance:.3g}" in far[0] and "threshold 0" in far[0]
    unseen = [w for w in p.warnings if "never seen in training" in w]
    assert len(unseen) == 1 and "Relu" in unseen[0] and "Conv " not in unseen[0]
    del pred.checkpoint_config_["ood"], pred.checkpoint_config_["train_ops"]  # missing keys: no checks
    p = service.predict_graph(env["graph"], pred)
    assert p.warnings == [] and p.ood_distance is None


def test_unknown_ops_share(env):
    from archcast.graph.ir import NetGraph, Node

    nodes = [Node("conv", "Conv", {"kernel_shape": (3, 3)}, [(1, 3, 8, 8)], [(1, 4, 8, 8)], flops=1000, params=108),
             Node("odd", "MyCustomOp", {}, [(1, 4, 8, 8)], [(1, 4, 8, 8)]),
             Node("relu", "Relu", {}, [(1, 4, 8, 8)], [(1, 4, 8, 8)])]
    g = NetGraph(nodes, [(0, 1), (1, 2)], name="odd", meta={"batch_size": 1}).validate()
    p = service.predict_graph(g, env["dir"])
    assert p.unknown_ops == {"MyCustomOp": 1} and math.isclose(p.unknown_share, 1 / 3)
    assert any("MyCustomOp x1" in w and "vocabulary" in w for w in p.warnings)
    assert "unknown ops: 33.3 % of nodes (MyCustomOp x1)" in report.format_prediction(p)


def test_predict_torch_module_and_other_sources(env):
    import archcast

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3))
    p = archcast.predict(net, torch.zeros(1, 3, 16, 16), predictor=env["dir"])
    assert p.graph["name"] == "Sequential" and p.latency_ms > 0 and len(p.operators) == len(p.by_op_type) + 1
    assert archcast.predict(str(env["model"]), platform="tiny-test").latency_ms == pytest.approx(
        archcast.predict(env["model"].read_bytes(), platform="tiny-test").latency_ms)
    assert archcast.predict(env["graph"], platform="tiny-test").graph["fingerprint"] == env["graph"].fingerprint()
    with pytest.raises(InvalidInputError, match="example_input"):
        archcast.predict(net, predictor=env["dir"])
    with pytest.raises(InvalidInputError, match="trained for platform 'tiny-test', not 'other'"):
        archcast.predict(env["graph"], predictor=env["dir"], platform="other")


def test_default_store_location_matches_store():
    from archcast.store import default_url

    assert service._default_store_location() == default_url()


# ------------------------------------------------------------------------------ store lookup
def test_query_or_predict_shows_measurement(env, capsys, tmp_path, monkeypatch):
    from archcast.store import Store

    g = env["graph"]
    db = tmp_path / "m.db"
    with Store(db) as st:
        st.add_graph(g)
        m = Measurement.from_times([1.5, 1.2, 1.3, 1.4, 9.0], warmup_runs=1, batch_size=1, host="h",
                                   timestamp="2026-11-23T10:00:00+00:00")
        st.record(g.fingerprint(), PLATFORM, m)
        other = Platform("tiny-test", device="another-device", runtime_version="0")
        st.record(g.fingerprint(), other, Measurement.from_times([7.0], warmup_runs=1, batch_size=1))
    p = service.predict_graph(g, env["dir"], store=db)
    assert p.measured == {"latency_ms": 1.4, "min_ms": 1.2, "measured_at": "2026-11-23T10:00:00", "n_runs": 5}
    assert service.predict_graph(_graph("gcn", 0), env["dir"], store=db).measured is None
    rc, out, _ = _cli(capsys, env["model"], "--platform", "tiny-test", "--db", db)
    assert rc == 0 and "measured in store: 1.40 ms (median of 5 runs, 2026-11-23)" in out
    with pytest.raises(SystemExit):  # argparse: mutually exclusive
        _cli(capsys, env["model"], "--platform", "tiny-test", "--db", db, "--no-store")
    rc, out, _ = _cli(capsys, env["model"], "--platform", "tiny-test", "--no-store")
    assert rc == 0 and "measured in store" not in out
    # ARCHCAST_DB -> this store: the default lookup finds it; an absent default is skipped, never created
    monkeypatch.setenv("ARCHCAST_DB", str(db))
    assert service.predict_graph(g, env["dir"], store="default").measured["latency_ms"] == 1.4
    monkeypatch.setenv("ARCHCAST_DB", str(env["root"] / "absent" / "none.db"))
    assert service.predict_graph(g, env["dir"], store="default").measured is None
    assert not (env["root"] / "absent").exists()
    with pytest.raises(InvalidInputError, match="does not exist"):
        service.predict_graph(g, env["dir"], store=tmp_path / "typo.db")
    assert not (tmp_path / "typo.db").exists()


# ------------------------------------------------------------------------------ CLI
def test_cli_json(env, capsys):
    rc, out, _ = _cli(capsys, env["model"], "--predictor", env["dir"], "--format", "json", "--no-store")
    assert rc == 0
    d = json.loads(out)
    for key in ("latency_ms", "low_ms", "high_ms", "level", "members_ms", "platform", "platform_id", "operators",
                "by_op_type", "unknown_ops", "unknown_share", "warnings", "measured", "graph", "predict_s"):
        assert key in d, key
    assert d["platform"] == "tiny-test" and d["graph"]["source"] == str(env["model"])
    assert math.isclose(sum(o["ms"] for o in d["operators"]), d["latency_ms"], rel_tol=1e-9)
    assert set(d["operators"][0]) == {"index", "name", "op_type", "ms", "share"}


def test_cli_text_and_plot(env, capsys, tmp_path):
    png = tmp_path / "plots" / "cell.png"
    rc, out, _ = _cli(capsys, env["model"], "--platform", "tiny-test", "--top", "3", "--plot", png)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("cell.onnx on tiny-test: ") and "90% interval" in lines[0]
    assert "2-member ensemble" in lines[0]
    assert "top 3 of " in out and "by op type: " in out and "unknown ops: none" in out
    assert f"wrote {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000


def test_cli_import_path_stays_light(env, tmp_path):
    """`import archcast` loads no torch; the command loads no onnxruntime/LightGBM/PyG/matplotlib/SciPy, and
    no SQLAlchemy when the default store does not exist (which it does not create)."""
    db = tmp_path / "absent.db"
    code = (
        "import sys, archcast\n"
        "assert 'torch' not in sys.modules and 'onnx' not in sys.modules\n"
        "from archcast.cli import main\n"
        f"assert main(['predict', {str(env['model'])!r}, '--platform', 'tiny-test']) == 0\n"
        "print(sorted(m for m in ('onnxruntime', 'lightgbm', 'torch_geometric', 'matplotlib', 'sqlalchemy', 'scipy') "
        "if m in sys.modules))\n")
    import os

    e = {**os.environ, "ARCHCAST_DB": str(db), "ARCHCAST_PREDICTORS": str(env["predictors"])}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=e)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "[]"
    assert not db.exists()


def test_a_repeated_prediction_parses_nothing_and_predicts_the_same(env, tmp_path, monkeypatch):
    """The graph comes from the on-disk cache the second time; a damaged entry is rebuilt."""
    from archcast.frontends import onnx as onnx_frontend

    monkeypatch.setenv("ARCHCAST_CACHE", str(tmp_path / "cache"))
    parses = []
    real = onnx_frontend.load_onnx
    monkeypatch.setattr(onnx_frontend, "load_onnx", lambda *a, **k: parses.append(1) or real(*a, **k))

    def run() -> dict:
        out = service.predict(str(env["model"]), platform="tiny-test").to_dict()
        out.pop("predict_s")
        return out

    first, again = run(), run()
    assert len(parses) == 1 and again == first and first["graph"]["fingerprint"] == env["graph"].fingerprint()
    for entry in (tmp_path / "cache" / "graphs").iterdir():
        entry.write_text('{"nodes": "damaged"}')
    assert run() == first and len(parses) == 2


def test_cli_errors(env, capsys, tmp_path):
    rc, _, err = _cli(capsys, tmp_path / "missing.onnx", "--platform", "tiny-test")
    _one_line_error(rc, err, "missing.onnx", "does not exist")
    (tmp_path / "bad.onnx").write_text("not onnx")
    rc, _, err = _cli(capsys, tmp_path / "bad.onnx", "--platform", "tiny-test")
    _one_line_error(rc, err, "bad.onnx")
    rc, _, err = _cli(capsys, env["model"], "--platform", "no-such-platform")
    _one_line_error(rc, err, "'no-such-platform'", "tiny-test")
    rc, _, err = _cli(capsys, env["model"], "--predictor", tmp_path)
    _one_line_error(rc, err, "no config.json")
    rc, _, err = _cli(capsys, env["model"], "--platform", "tiny-test", "--top", "0")
    _one_line_error(rc, err, "--top")


def test_cli_refuses_other_tokenizer_version_and_broken_weights(env, capsys, tmp_path):
    bad = tmp_path / "latency-old"
    shutil.copytree(env["dir"], bad)
    cfg = json.loads((bad / "config.json").read_text())
    current = cfg["tokenizer_version"]
    cfg["tokenizer_version"] = "0-old"
    (bad / "config.json").write_text(json.dumps(cfg))
    rc, _, err = _cli(capsys, env["model"], "--predictor", bad)
    _one_line_error(rc, err, "tokenizer_version='0-old'", f"tokenizer_version={current!r}")
    cfg["tokenizer_version"] = current
    (bad / "config.json").write_text(json.dumps(cfg))
    (bad / "model.safetensors").write_bytes(b"garbage")
    rc, _, err = _cli(capsys, env["model"], "--predictor", bad)
    _one_line_error(rc, err, "cannot be read")


def test_cli_dynamic_input_shape(env, capsys, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8, 8])
    g = helper.make_graph([helper.make_node("Relu", ["pixels"], ["y"])], "dyn", [x], [y])
    path = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    rc, _, err = _cli(capsys, path, "--platform", "tiny-test")
    _one_line_error(rc, err, "'pixels'", "--input-shape")
    rc, out, _ = _cli(capsys, path, "--platform", "tiny-test", "--input-shape", "pixels=2,3,8,8", "--format", "json")
    assert rc == 0 and json.loads(out)["graph"]["batch_size"] == 2


# ------------------------------------------------------------------------------ regressions (issue 9 audit)
def test_plot_draws_exactly_top_bars_and_refuses_bad_paths(env, tmp_path):
    from matplotlib.image import imread

    p = service.predict_graph(env["graph"], env["dir"])
    small = imread(report.plot_breakdown(p, tmp_path / "3.png", top=3))
    big = imread(report.plot_breakdown(p, tmp_path / "12.png", top=12))
    # the figure height grows by 0.32 inch (35 px at 110 dpi) per bar
    assert big.shape[0] - small.shape[0] == pytest.approx(9 * 0.32 * 110, abs=3)
    with pytest.raises(InvalidInputError, match="cannot write the plot"):
        report.plot_breakdown(p, "/proc/x/plot.png")
    with pytest.raises(InvalidInputError, match="top"):
        report.plot_breakdown(p, tmp_path / "0.png", top=0)


def test_api_arguments_of_the_wrong_type_are_named(env):
    import archcast

    with pytest.raises(InvalidInputError, match="platform must be"):
        archcast.predict(env["model"], platform=["ort-cpu-1t"])
    with pytest.raises(InvalidInputError, match="input_shapes must be"):
        archcast.predict(env["model"], input_shapes=5)


def test_non_finite_prediction_is_an_error(env):
    pred = _fresh(env)
    with torch.no_grad():
        for net in pred.members_:
            net.head[-1].bias.fill_(float("inf"))
    with pytest.raises(CheckpointError, match="non-finite"):
        service.predict_graph(env["graph"], pred)


def test_shape_only_ops_are_never_unseen_in_training(env):
    from archcast.graph.ir import NetGraph

    pred = _fresh(env)
    g = env["graph"]
    d = json.loads(g.to_json())
    n = len(d["nodes"])
    d["nodes"].append({**d["nodes"][-1], "name": "shape_of_out", "op_type": "Shape", "flops": 0, "params": 0})
    d["edges"].append([n - 1, n])
    try:
        g2 = NetGraph.from_json(json.dumps(d)).validate()
    except Exception:  # noqa: BLE001 - the IR's JSON layout is not this test's subject
        pytest.skip("could not build the variant graph")
    warnings = service.predict_graph(g2, pred).warnings
    assert not any("never seen in training" in w and "Shape" in w for w in warnings), warnings
