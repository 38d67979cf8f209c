"""Calibrating predictions to this machine with the canaries (``archcast calibrate``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from archcast.errors import InvalidInputError
from archcast.profile import BACKENDS, Backend, Measurement, Platform
from archcast.service import calibration as C

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "src" / "archcast" / "checkpoints" / "kernels-ort-cpu-1t"
EXAMPLE = REPO / "src" / "archcast" / "examples" / "resnet18.onnx"
REF = {"attention": 0.6, "conv": 1.6, "depthwise": 2.2, "matmul": 1.7, "memory": 0.6}


@pytest.fixture(autouse=True)
def cal_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(C.CALIBRATION_ENV, str(tmp_path / "cal"))
    return tmp_path / "cal"


def test_speed_factor_is_the_geometric_mean_over_shared_canaries():
    f, per = C.speed_factor({"conv": 0.8, "matmul": 3.4, "extra": 9.0}, REF)
    assert per == pytest.approx({"conv": 0.5, "matmul": 2.0}) and f == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="no canary in common"):
        C.speed_factor({"x": 1.0}, REF)
    assert C.reference_of({"reference_canary_ms": REF}) == REF
    assert C.reference_of({}) is None and C.reference_of({"reference_canary_ms": {"conv": -1}}) is None


class HalfSpeed(Backend):
    """Every canary takes twice its reference time (a machine 2x slower)."""

    name = "fake-half"

    def measure(self, onnx_bytes, platform, batch_size=None, **options):
        t = 2 * REF[onnx_bytes.decode()]
        return Measurement.from_times([t, t], [t, t], warmup_runs=1, batch_size=1, host="h", timestamp="2026-01-01T00:00:00")


def test_calibrate_measures_saves_and_load_reads(tmp_path, monkeypatch, cal_dir):
    import archcast.collect.canaries as canaries

    import archcast.profile.machine as machine

    monkeypatch.setattr(canaries, "canary_onnx", lambda name: name.encode())  # no torch export in a unit test
    monkeypatch.setattr(machine, "cpu_model", lambda: "fake")  # this machine is the platform's device
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "config.json").write_text(json.dumps({"reference_canary_ms": REF, "trained_on": {"dataset": "v9"}}))
    with BACKENDS.temporary("fake-half", HalfSpeed):
        plat = Platform("fake-1t", backend="fake-half", device="fake", runtime="fake", runtime_version="0")
        cal = C.calibrate(plat, ck, rounds=2)
    assert cal["factor"] == pytest.approx(2.0) and cal["reference"] == "v9"
    again = C.load_calibration(plat.platform_id)
    assert again["factor"] == pytest.approx(2.0) and again["canary_ms"]["conv"] == pytest.approx(3.2)
    assert C.load_calibration("0000") is None
    (ck / "config.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="records no reference canary times"):
        C.calibrate(plat, ck)


def test_calibrating_on_another_cpu_model_is_refused_unless_asked_and_then_said(tmp_path, monkeypatch, cal_dir):
    import archcast.collect.canaries as canaries
    import archcast.profile.machine as machine
    import archcast.profile.platform as platforms

    monkeypatch.setattr(canaries, "canary_onnx", lambda name: name.encode())
    monkeypatch.setattr(machine, "cpu_model", lambda: "Other CPU")
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "config.json").write_text(json.dumps({"reference_canary_ms": REF}))
    with BACKENDS.temporary("fake-half", HalfSpeed):
        plat = Platform("fake-1t", backend="fake-half", device="fake", runtime="fake", runtime_version="0")
        here = Platform("fake-1t", backend="fake-half", device="Other CPU", runtime="fake", runtime_version="0")
        monkeypatch.setattr(platforms, "default_platform", lambda threads=1, graph_opt_level="all": here)
        with pytest.raises(InvalidInputError, match="is not the predictor's platform .*--other-cpu"):
            C.calibrate(plat, ck, rounds=1)
        assert C.load_calibration(plat.platform_id) is None  # nothing written
        cal = C.calibrate(plat, ck, rounds=1, other_cpu=True)
    assert cal["factor"] == pytest.approx(2.0) and cal["platform_id"] == plat.platform_id  # what predict looks up
    assert cal["other_cpu"] == {"from": "fake", "to": "Other CPU", "measured_platform_id": here.platform_id}

    class Pred:
        latency_ms, low_ms, high_ms, members_ms, operators, by_op_type, warnings = 1.0, 0.5, 2.0, [1.0], [], {}, []

    p = C.apply_calibration(Pred(), C.load_calibration(plat.platform_id))
    assert p.latency_ms == pytest.approx(2.0) and "across CPU models (fake -> Other CPU" in p.warnings[0]


def test_predict_on_another_cpu_model_without_calibration_says_whose_times_they_are(monkeypatch, cal_dir):
    import archcast.profile.machine as machine
    from archcast.frontends import load_graph
    from archcast.service.kernel_predict import predict_kernels

    graph = load_graph(str(EXAMPLE))
    monkeypatch.setattr(machine, "cpu_model", lambda: "Other CPU")
    other = predict_kernels(str(EXAMPLE), graph, SHIPPED)
    assert any("not this CPU (Other CPU)" in w and "--other-cpu" in w for w in other.warnings)
    device = json.loads((SHIPPED / "config.json").read_text())["platform"]["device"]
    monkeypatch.setattr(machine, "cpu_model", lambda: device)
    same = predict_kernels(str(EXAMPLE), graph, SHIPPED)
    assert not any("not this CPU" in w for w in same.warnings) and same.latency_ms == pytest.approx(other.latency_ms)


def test_a_damaged_calibration_is_a_clear_error(cal_dir):
    cal_dir.mkdir(parents=True)
    (cal_dir / "abc.json").write_text('{"format": "archcast-calibration", "factor": 1e9}')
    with pytest.raises(InvalidInputError, match="abc.json is damaged"):
        C.load_calibration("abc")
    (cal_dir / "abc.json").write_text("not json")
    with pytest.raises(InvalidInputError, match="run archcast calibrate again"):
        C.load_calibration("abc")


def test_predict_scales_every_time_by_the_calibration(cal_dir):
    from archcast.frontends import load_graph
    from archcast.service.kernel_predict import load_kernel_predictor, predict_kernels

    cfg = load_kernel_predictor(SHIPPED).checkpoint_config_
    ref = C.reference_of(cfg)
    assert ref is not None and set(ref) == set(REF)  # the shipped checkpoint records its labels' canaries
    graph = load_graph(str(EXAMPLE))
    plain = predict_kernels(str(EXAMPLE), graph, SHIPPED)
    pid = plain.platform_id
    cal_dir.mkdir(parents=True)
    (cal_dir / f"{pid}.json").write_text(json.dumps({"format": "archcast-calibration", "factor": 0.5,
                                                     "canary_ms": {k: v * 0.5 for k, v in ref.items()}}))
    fast = predict_kernels(str(EXAMPLE), graph, SHIPPED)
    off = predict_kernels(str(EXAMPLE), graph, SHIPPED, calibration=False)
    assert fast.latency_ms == pytest.approx(0.5 * plain.latency_ms) and off.latency_ms == pytest.approx(plain.latency_ms)
    assert fast.high_ms == pytest.approx(0.5 * plain.high_ms)
    assert sum(o["ms"] for o in fast.operators) == pytest.approx(fast.latency_ms, rel=1e-6)
    assert math.isclose(sum(fast.by_op_type.values()), fast.latency_ms, rel_tol=1e-6)
    assert any("x0.500 to this machine" in w for w in fast.warnings)
    assert not any("to this machine" in w for w in off.warnings)


def test_cli_calibrate_show_and_clear(capsys, cal_dir):
    from archcast.cli import main

    assert main(["calibrate", "--show"]) == 0
    assert "no calibration for ort-cpu-1t" in capsys.readouterr().out
    assert main(["calibrate", "--clear"]) == 0
    assert "no calibration at" in capsys.readouterr().out
    assert main(["calibrate", "--rounds", "0"]) == 2
    assert "--rounds must be >= 1" in capsys.readouterr().err
