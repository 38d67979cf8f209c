"""The measurement protocol: passes, canary checkpoints, re-measure on drift, kernels, kill-safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archcast.collect.journal import Journal
from archcast.collect.labels import SpeedIndex, labels, pass_values
from archcast.collect.passes import Protocol, collect_samples, retest_pass
from archcast.profile import BACKENDS, Backend, Measurement, Platform, default_platform
from archcast.profile.measurement import MeasurementError
from archcast.store import Store
from archcast.zoo.base import ZooSample
from tests.collect.tiny_family import NAME, TinyCollectFamily

FAST = {"min_runs": 3, "min_time_s": 0.0, "warmup_runs": 1, "warmup_s": 0.0}
REPO = Path(__file__).resolve().parents[2]


class FakeClock:
    """The machine as the fake backend sees it: every call is one tick; from tick ``slow_from``
    on, everything runs ``factor`` times slower (a machine that drifts, as a fake clock)."""

    def __init__(self, slow_from: int, factor: float) -> None:
        self.ticks, self.slow_from, self.factor = 0, slow_from, factor

    def speed(self) -> float:
        self.ticks += 1
        return self.factor if self.ticks >= self.slow_from else 1.0

    def now(self) -> str:  # one tick = one second of the fake machine's time
        return datetime.fromtimestamp(1.7e9 + self.ticks, UTC).isoformat()


CLOCK = FakeClock(10 ** 9, 1.0)


def base_ms(onnx_bytes: bytes) -> float:
    return 0.5 + (len(onnx_bytes) % 997) / 100.0  # a fixed "true" time per model


class FakeBackend(Backend):
    name = "fake-drift"

    def measure(self, onnx_bytes, platform, batch_size=None, **options):
        t = base_ms(onnx_bytes) * CLOCK.speed()
        return Measurement.from_times([t, t * 1.01, t * 1.02], [t * 0.9, t * 0.91, t * 0.92], warmup_runs=1,
                                      batch_size=batch_size or 1, host="fake-host", timestamp=CLOCK.now())


@pytest.fixture
def fake_platform():
    with BACKENDS.temporary("fake-drift", FakeBackend):
        yield Platform("fake-1t", backend="fake-drift", device="fake", runtime="fake", runtime_version="0")


def samples(n, start=0):
    fam = TinyCollectFamily()
    return [fam.sample(s) for s in range(start, start + n)]


def test_canary_drift_triggers_a_remeasure_and_normalisation_removes_it(tmp_path, fake_platform):
    global CLOCK
    # inline, one worker: checkpoint (5 canaries: ticks 1-5), models 1-3 (6-8), checkpoint (9-13),
    # models 4-6 (14-16), checkpoint (17-21). From tick 15 the machine is 1.5x slower.
    CLOCK = FakeClock(slow_from=15, factor=1.5)
    store = Store(tmp_path / "s.db")
    proto = Protocol(passes=2, canary_every=3, drift_threshold=0.1, kernels=False, extra_passes=0,
                     measure_kw=FAST)
    report = collect_samples(samples(6), store, fake_platform, tmp_path / "camp", protocol=proto, workers=0,
                             progress=False)
    assert (report.ok, report.failed, report.drift_windows, report.remeasured) == (6, 0, 1, 3)
    rows = [r for r in store.measurements(fake_platform, current_only=False)]
    p1 = [r for r in rows if r.pass_id == "camp/p1" and r.role is None]
    assert len(p1) == 9  # 6 first measurements + the drifting window's 3 again, old rows kept
    assert sum(r.is_current for r in rows if r.role is None) == 6  # one current row per model
    canary = [r for r in rows if r.role == "canary"]
    assert len(canary) % 5 == 0 and {r.pass_id for r in canary} == {"camp/p1", "camp/p2"}
    # the re-measured rows carry the slow machine's index, the first window's the reference
    by_fp: dict[str, list] = {}
    for r in sorted(p1, key=lambda r: r.id):
        by_fp.setdefault(r.fingerprint, []).append(r)
    again = [v for v in by_fp.values() if len(v) == 2]
    assert len(again) == 3 and all(v[1].speed_index == pytest.approx(1.5) for v in again)
    assert sorted(r.speed_index for v in by_fp.values() if len(v) == 1 for r in v) == pytest.approx([1.0] * 3)

    from archcast.collect.passes import row_of

    prow = [row_of(r) for r in rows]
    speed = SpeedIndex([r for r in prow if r.role == "canary"], "cpu_ms_min")
    raw = labels(pass_values(prow, "cpu_ms_min", passes=["camp/p1", "camp/p2"]))
    norm = labels(pass_values(prow, "cpu_ms_min", speed, passes=["camp/p1", "camp/p2"]))
    # raw per-pass values disagree (pass 2 ran slow), normalised ones agree up to the canary's
    # interpolation between checkpoints
    assert max(s for _, s, _ in raw.values()) > 0.3
    assert max(s for _, s, _ in norm.values()) < 1e-9


FAIL_ONCE: set[int] = set()  # model sizes (len of the ONNX bytes) whose next measurement raises


class FlakyBackend(FakeBackend):
    name = "fake-flaky"

    def measure(self, onnx_bytes, platform, batch_size=None, **options):
        if len(onnx_bytes) in FAIL_ONCE:
            FAIL_ONCE.discard(len(onnx_bytes))
            raise MeasurementError("run", "flaky runtime")
        return super().measure(onnx_bytes, platform, batch_size, **options)


def test_retry_failed_measures_a_failed_model_again_in_its_pass(tmp_path):
    from archcast.zoo import export_sample

    global CLOCK
    CLOCK = FakeClock(10 ** 9, 1.0)
    models = samples(4)
    proto = Protocol(passes=2, canary_every=50, kernels=False, extra_passes=0, measure_kw=FAST)
    with BACKENDS.temporary("fake-flaky", FlakyBackend):
        platform = Platform("flaky-1t", backend="fake-flaky", device="fake", runtime="fake", runtime_version="0")
        store = Store(tmp_path / "s.db")
        FAIL_ONCE.add(len(export_sample(models[1], weight_free=True)))
        first = collect_samples(models, store, platform, tmp_path / "camp", protocol=proto, workers=0, progress=False)
        assert (first.ok, first.failed) == (3, 1) and "flaky runtime" in first.failures[0][1]
        again = collect_samples(models, store, platform, tmp_path / "camp", protocol=proto, workers=0, progress=False)
        assert (again.ok, again.failed) == (3, 1)  # resuming alone keeps the failure
        fixed = collect_samples(models, store, platform, tmp_path / "camp", protocol=proto, workers=0,
                                progress=False, retry_failed=True)
        assert (fixed.ok, fixed.failed) == (4, 0)
        rows = [r for r in store.measurements(platform, current_only=False) if r.role is None]
        by_pass = {pid: sum(r.status == "ok" for r in rows if r.pass_id == pid) for pid in ("camp/p1", "camp/p2")}
        assert by_pass == {"camp/p1": 4, "camp/p2": 4}  # the retried model went on to its second pass
        assert sum(r.status == "failed" for r in rows) == 1  # the failed attempt stays as history


def test_passes_that_disagree_get_a_further_pass(tmp_path, fake_platform):
    global CLOCK
    CLOCK = FakeClock(slow_from=12, factor=1.3)  # pass 1 (ticks 1-11) fast, pass 2 slow
    store = Store(tmp_path / "s.db")
    proto = Protocol(passes=2, canary_every=10, drift_threshold=10.0, kernels=False, normalise=False,
                     disagree_threshold=0.1, extra_passes=1, measure_kw=FAST)
    report = collect_samples(samples(3), store, fake_platform, tmp_path / "camp", protocol=proto, workers=0,
                             progress=False)
    rows = [r for r in store.measurements(fake_platform, current_only=False) if r.role is None]
    assert report.further_pass == 3 and sum(r.pass_id == "camp/p3" for r in rows) == 3
    # the resumed campaign measures nothing again
    again = collect_samples(samples(3), store, fake_platform, tmp_path / "camp", protocol=proto, workers=0,
                            progress=False)
    assert again.measurements == 0 and again.skipped == 3 and again.ok == 3


def test_passes_kernels_cpu_time_and_v2_round_trip(tmp_path):
    from archcast.collect.export import export_latency_dataset
    from archcast.data.latency_dataset import load_latency_dataset

    store = Store(tmp_path / "s.db")
    platform = default_platform()
    proto = Protocol(passes=2, canary_every=10, measure_kw=FAST, profile_runs=3, extra_passes=0,
                     canary_kw={"min_runs": 3, "min_time_s": 0.0, "warmup_runs": 1, "warmup_s": 0.0})
    report = collect_samples(samples(3), store, platform, tmp_path / "camp", protocol=proto, workers=0,
                             progress=False)
    assert report.ok == 3 and report.per_pass["camp/p1"] >= 3 and report.per_pass["camp/p2"] >= 3
    rows = [r for r in store.measurements(platform, current_only=False) if r.role is None]
    # CPU time of the calling thread: recorded, positive, not above the wall time (+ the clock reads)
    assert all(r.cpu_ms_min is not None and 0 < r.cpu_ms_min <= r.latency_ms_median * 1.2 + 0.005 for r in rows)
    j = Journal(tmp_path / "camp")
    kern, opt = j.kernels(), j.optimized()
    fps = {r.fingerprint for r in rows}
    assert {(fp, p) for fp in fps for p in ("camp/p1", "camp/p2")} <= set(kern)
    for (fp, p), line in kern.items():
        cov = sum(k[2] for k in line["kernels"]) / line["run_us"]
        assert 0.2 < cov <= 1.1 and line["runs"] == 3
    assert set(opt) == fps and all(v["ir"] for v in opt.values())

    retest_pass(store, platform, tmp_path / "camp", 2, workers=0, progress=False)
    out = export_latency_dataset(store, tmp_path / "ds", platform, campaign=tmp_path / "camp")
    ds = load_latency_dataset(out)
    assert ds.format_version == 2 and len(ds) == 3
    assert ds.manifest["label"]["stat"] == "cpu_ms_min" and ds.manifest["label"]["passes"] == ["camp/p1", "camp/p2"]
    graphs = ds.optimized_graphs()
    klabels = ds.kernel_labels()
    for i, r in enumerate(ds.records):
        assert r.n_passes == 2 and r.label_ms > 0 and r.label_spread is not None and r.kernel_coverage > 0.2
        names = {n.name for n in graphs[i].nodes}
        assert set(klabels[r.fingerprint]) <= names  # every kernel is a node of the optimised graph
        # the kernel table holds exactly the journal's numbers
        assert {k[0]: k[2] for k in kern[(r.fingerprint, "camp/p1")]["kernels"]} == pytest.approx(
            {k.kernel: k.kernel_us for k in ds.kernels() if k.fingerprint == r.fingerprint and k.pass_id == "camp/p1"},
            rel=1e-4)
        # the store's kernel profile is the data set's per-kernel label (the retest never enters it)
        prof = store.kernel_profile(r.fingerprint, platform)
        assert (prof.pass_id, prof.n_passes, prof.source) == ("camp/p2", 2, "archcast")
        assert prof.times_us() == pytest.approx(klabels[r.fingerprint], rel=1e-4)
        assert prof.coverage == pytest.approx(r.kernel_coverage, rel=1e-4)
    passes = ds.passes()
    assert {p["pass_id"] for p in passes} >= {"camp/p1", "camp/p2", "camp/retest1"}
    assert sum(p["role"] == "canary" for p in passes) >= 5 * 3
    again = load_latency_dataset(export_latency_dataset(store, tmp_path / "ds2", platform, campaign=tmp_path / "camp"))
    assert again.fingerprint == ds.fingerprint  # deterministic files


@pytest.mark.subprocess
def test_killed_parent_and_worker_lose_and_double_nothing(tmp_path):
    db, camp = tmp_path / "k.db", tmp_path / "camp"
    crash = {"channels": 9, "depth": 1, "size": 8, "crash_once": str(tmp_path / "crashed")}
    configs = [crash] + [{"channels": 3 + i, "depth": 1, "size": 8} for i in range(5)]  # 6 distinct graphs
    kw = {"passes": 2, "canary_every": 2, "kernels": False, "measure_kw": {"min_runs": 10, "min_time_s": 0.15},
          "canary_kw": {"min_runs": 3, "min_time_s": 0.0}, "extra_passes": 0}
    script = (
        "from archcast.collect.passes import Protocol, collect_samples; "
        "from archcast.profile import default_platform; from archcast.store import Store; "
        "from archcast.zoo.base import ZooSample; import tests.collect.tiny_family as t; "
        f"s = [ZooSample(t.NAME, i, c) for i, c in enumerate({configs!r})]; "
        f"collect_samples(s, Store({str(db)!r}), default_platform(), {str(camp)!r}, protocol=Protocol(**{kw!r}), "
        "workers=1, progress=False)")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env)
    deadline = time.monotonic() + 90
    n = 0
    while time.monotonic() < deadline and proc.poll() is None:  # kill the parent mid-pass
        time.sleep(0.2)
        if (tmp_path / "crashed").exists() and db.exists():  # the worker died once and was replaced
            try:
                n = sum(1 for r in Store(db, create=False).measurements(current_only=False) if r.role is None)
            except Exception:  # noqa: BLE001 - the file may be mid-creation
                n = 0
            if n >= 3:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    store = Store(db)
    platform = default_platform()
    n_before = sum(1 for r in store.measurements(current_only=False) if r.role is None)
    assert 3 <= n_before < 12  # killed with part of the work done
    # the sample that killed its worker was given again (first, to the new worker) and measured
    assert [r.status for r in store.measurements(current_only=False) if r.seed == 0 and r.role is None][:1] == ["ok"]
    # resumed in this process: nothing measured twice, nothing left out
    report = collect_samples([ZooSample(NAME, i, c) for i, c in enumerate(configs)], store, platform, camp,
                             protocol=Protocol(**kw), workers=0, progress=False)
    rows = [r for r in store.measurements(platform, current_only=False) if r.role is None]
    per: dict = {}
    for r in rows:
        per.setdefault((r.fingerprint, r.pass_id), []).append(r)
    models = {fp for fp, _ in per}
    assert len(models) == 6 and all(r.status == "ok" for r in rows)  # the crashing sample was retried
    assert report.failed == 0 and report.ok == 6
    # every model has both passes; more than one row of a (model, pass) only from a drift re-measure
    assert set(per) == {(fp, p) for fp in models for p in ("camp/p1", "camp/p2")}
    assert all(len(v) <= 2 for v in per.values())
    assert len(rows) - len(per) == sum(1 for v in per.values() if len(v) == 2)
    assert {r.pass_id for r in store.measurements(platform, current_only=False) if r.role == "canary"} == \
        {"camp/p1", "camp/p2"}


def test_v2_datasheet_ablation_from_the_files_alone(tmp_path, fake_platform):
    from archcast.collect.datasheet import write_datasheet
    from archcast.collect.export import export_latency_dataset
    from archcast.data.latency_dataset import load_latency_dataset

    global CLOCK
    CLOCK = FakeClock(slow_from=10 ** 9, factor=1.0)
    store = Store(tmp_path / "s.db")
    proto = Protocol(passes=2, canary_every=2, kernels=False, extra_passes=0, normalise=False, measure_kw=FAST)
    collect_samples(samples(4), store, fake_platform, tmp_path / "camp", protocol=proto, workers=0, progress=False)
    CLOCK.factor, CLOCK.slow_from = 1.2, 0  # the retest runs on a machine 20 % slower
    retest_pass(store, fake_platform, tmp_path / "camp", 3, workers=0, progress=False)
    ds = load_latency_dataset(export_latency_dataset(store, tmp_path / "ds", fake_platform, campaign=tmp_path / "camp"))
    text = write_datasheet(ds, note="measured on a busy machine").read_text()
    nf = json.loads((ds.path / "noise_floor.json").read_text())
    by = {(a["stat"], a["canary_normalised"], a["label_passes"], a["remeasure"]): a["mape"] for a in nf["ablation"]}
    # the slow retest machine: raw labels are 20 % off, canary-normalised ones are not
    assert by[("cpu_ms_min", False, "all", True)] == pytest.approx(0.2, rel=1e-3)
    assert by[("cpu_ms_min", True, "all", True)] < 1e-4  # the files keep 5 significant digits
    assert "busy machine" in text and "with canary normalisation" in text and "| **as built** |" in text


def test_cli_profile_passes_retest_and_export_v2(tmp_path, capsys):
    from archcast.cli import main as cli_main

    db, camp, out = str(tmp_path / "c.db"), str(tmp_path / "camp"), str(tmp_path / "ds")
    base = ["profile", "--db", db, "--campaign", camp, "--workers", "0", "--no-progress"]
    assert cli_main([*base, "--family", NAME, "--count", "2", "--passes", "2", "--no-kernels", "--min-runs", "3",
                     "--min-time", "0"]) == 0
    assert "collected 2 models" in capsys.readouterr().out
    assert cli_main([*base, "--retest", "1"]) == 0
    assert cli_main(["dataset", "export", "--db", db, "--platform", "ort-cpu-1t", "--campaign", camp, "--out", out,
                     "--no-progress"]) == 0
    assert "2 models in 1 families" in capsys.readouterr().out
    assert cli_main(["dataset", "datasheet", out, "--note", "a test machine"]) == 0
    assert cli_main(["profile", "--db", db, "--family", NAME, "--count", "1", "--passes", "2"]) == 2
    assert "--campaign DIR" in capsys.readouterr().err
