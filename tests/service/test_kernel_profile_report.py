"""``archcast predict --plot`` beside a measured kernel profile: the store's kernels joined by name
with the predicted ones, bars side by side, the measured total and the top kernels' MAPE."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.cli import main
from archcast.profile.platform import Platform
from archcast.service import report
from archcast.service.prediction import LatencyPrediction
from archcast.store import Store

PNG = b"\x89PNG\r\n\x1a\n"


def tiny_onnx(path):
    """conv -> relu -> conv -> relu: a few kernels on onnxruntime's CPU provider."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["input", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"], name="relu1"),
             helper.make_node("Conv", ["b", "w2"], ["c"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu2")]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], [w1, w2])
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString())
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHCAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ARCHCAST_DB", str(tmp_path / "absent.db"))  # the default store: absent, skipped
    return {"model": tiny_onnx(tmp_path / "tiny.onnx"), "tmp": tmp_path}


def predict(capsys, *args) -> str:
    assert main(["predict", *map(str, args), "--no-calibration"]) == 0
    return capsys.readouterr().out


def store_with_profile(env, capsys) -> tuple[str, dict, list]:
    """A store holding the model's graph and a profile of all its kernels but the last one, each
    measured at twice its predicted time."""
    from archcast.service.checkpoints import kernel_predictor_dir
    from archcast.service.predict import read_model

    first = json.loads(predict(capsys, env["model"], "--no-store", "--format", "json"))
    assert first["predictor"] == "kernels" and first["kernel_profile"] is None
    platform = Platform.from_dict(json.loads((kernel_predictor_dir(None) / "config.json").read_text())["platform"])
    assert platform.platform_id == first["platform_id"]
    graph, _ = read_model(str(env["model"]))
    db = env["tmp"] / "s.db"
    with Store(db) as st:
        st.add_graph(graph)
        kernels = [(o["name"], o["op_type"], 2000.0 * o["ms"]) for o in first["operators"][:-1]]
        assert st.put_kernel_profile(graph.fingerprint(), platform, kernels, coverage=0.9, pass_id="c/p2",
                                     n_passes=2) == "added"
    return str(db), first, kernels


def test_predict_plot_draws_measured_beside_predicted_and_reports_the_mape(env, capsys):
    from matplotlib.image import imread

    db, first, kernels = store_with_profile(env, capsys)
    png = env["tmp"] / "out" / "tiny.png"
    d = json.loads(predict(capsys, env["model"], "--db", db, "--plot", png, "--format", "json", "--top", "10"))
    assert d["plot"] == str(png) and png.read_bytes()[:8] == PNG
    prof = d["kernel_profile"]
    assert prof["kernel_sum_ms"] == pytest.approx(sum(us for _, _, us in kernels) / 1000.0)
    assert (prof["coverage"], prof["pass_id"], prof["n_passes"], prof["source"]) == (0.9, "c/p2", 2, "archcast")
    comp = d["kernel_comparison"]
    n_top = min(10, len(first["operators"]))
    assert comp["join"] == "kernel name" and len(comp["top"]) == n_top
    assert comp["n_measured_kernels"] == comp["n_matched"] == len(kernels)
    last = first["operators"][-1]["name"]  # the one kernel the profile lacks
    assert [r["measured_ms"] is None for r in comp["top"]] == [r["name"] == last for r in comp["top"]]
    assert comp["top_matched"] == n_top - any(r["name"] == last for r in comp["top"])
    assert comp["kernel_mape_top"] == pytest.approx(0.5)  # every measured kernel took twice the prediction
    assert comp["measured_kernel_sum_ms"] == pytest.approx(prof["kernel_sum_ms"])
    # two bars per kernel: the figure is 1.8 + 0.42 inch per kernel at 110 dpi
    assert imread(png).shape[0] == pytest.approx((1.8 + 0.42 * n_top) * 110, abs=2)

    text = predict(capsys, env["model"], "--db", db, "--top", "3")
    line = next(l for l in text.splitlines() if l.startswith("measured kernels in store: "))
    assert "(archcast, c/p2, coverage 0.90)" in line and "top 3 predicted vs measured: MAPE 50.0 %" in line
    assert "measured" in text.split("top 3 of ")[1].splitlines()[1]  # the table's measured column


def test_without_a_profile_the_plot_and_output_are_the_usual_ones(env, capsys):
    from matplotlib.image import imread

    db = env["tmp"] / "empty.db"
    Store(db).close()
    png = env["tmp"] / "plain.png"
    d = json.loads(predict(capsys, env["model"], "--db", db, "--plot", png, "--format", "json", "--top", "2"))
    assert d["kernel_profile"] is None and "kernel_comparison" not in d
    assert imread(png).shape[0] == pytest.approx((1.4 + 0.32 * 2) * 110, abs=2)
    assert "measured kernels" not in predict(capsys, env["model"], "--db", db)


def _prediction(names, predictor="archcast", profile=None) -> LatencyPrediction:
    ops = [{"index": i, "name": n, "op_type": "Conv", "ms": float(len(names) - i), "share": 0.0}
           for i, n in enumerate(names)]
    total = sum(o["ms"] for o in ops)
    return LatencyPrediction(latency_ms=total, low_ms=total, high_ms=total, level=0.9, members_ms=[total],
                             platform="p", platform_id="x", operators=ops, by_op_type={"Conv": total},
                             unknown_ops={}, unknown_share=0.0, warnings=[], measured=None,
                             graph={"name": "g", "n_nodes": len(ops), "flops": 0, "params": 0, "batch_size": 1,
                                    "fingerprint": "f"}, predict_s=0.0, predictor=predictor, kernel_profile=profile)


def test_a_network_level_breakdown_joins_only_the_names_the_runtime_kept(tmp_path):
    profile = {"kernels": [["fused conv1", "FusedConv", 3.0], ["conv2", "Conv", 4.0]], "kernel_sum_ms": 7.0,
               "coverage": None, "pass_id": None, "n_passes": None, "source": "dataset", "measured_at": "2026-01-01"}
    p = _prediction(["conv1", "relu1", "conv2"], profile=profile)
    c = report.kernel_comparison(p, top=2)
    assert c["join"] == "node name = kernel name" and c["n_matched"] == 1  # conv1 ran as "fused conv1"
    assert [r["measured_ms"] for r in c["top"]] == [None, None] and c["kernel_mape_top"] is None
    assert "none of the top 2 predicted has a measured kernel of its name" in report.format_prediction(p, top=2)
    assert report.kernel_comparison(p, top=3)["kernel_mape_top"] == pytest.approx(abs(1.0 - 4.0) / 4.0)
    assert report.plot_breakdown(p, tmp_path / "n.png", top=3).read_bytes()[:8] == PNG
    assert report.kernel_comparison(_prediction(["a"]), top=3) is None
