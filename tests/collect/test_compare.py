"""Two data sets of one platform compared model by model (a retest at another time, on one canary scale)."""

from __future__ import annotations

import json

import pytest

import tests.collect.test_passes as tp
from archcast.collect.compare import compare_datasets, render_comparison
from archcast.collect.export import export_latency_dataset
from archcast.collect.passes import Protocol, collect_samples
from archcast.data.latency_dataset import load_latency_dataset, pick_regenerable
from archcast.errors import InvalidInputError
from archcast.store import Store
from tests.collect.test_passes import FAST, FakeClock, fake_platform, samples  # noqa: F401 (fixture)
from tests.collect.tiny_family import NAME


def _campaign(tmp_path, name, platform, todo):
    store = Store(tmp_path / f"{name}.db")
    proto = Protocol(passes=2, canary_every=2, kernels=False, extra_passes=0, drift_threshold=10.0, measure_kw=FAST)
    collect_samples(todo, store, platform, tmp_path / name, protocol=proto, workers=0, progress=False)
    return load_latency_dataset(export_latency_dataset(store, tmp_path / f"{name}-ds", platform,
                                                       campaign=tmp_path / name))


def test_a_slower_machine_later_is_divided_out_by_the_shared_canaries(tmp_path, fake_platform):  # noqa: F811
    tp.CLOCK = FakeClock(slow_from=10 ** 9, factor=1.0)
    base = _campaign(tmp_path, "v", fake_platform, samples(6))
    again = [base.records[i].sample() for i in sorted(pick_regenerable(base, 4, 0, "retest"))]
    tp.CLOCK = FakeClock(slow_from=0, factor=1.5)  # another machine, 1.5x slower, another day
    other = _campaign(tmp_path, "rt", fake_platform, again)
    assert base.manifest["label"]["canary_normalised"] and other.manifest["label"]["canary_normalised"]  # the default
    c = compare_datasets(base.path, other.path)
    assert c["n_common"] == 4 and c["stat"] == "cpu_ms_min"
    raw, norm = c["label"]["raw"], c["label"]["canary_normalised"]
    assert raw["mape"] == pytest.approx(0.5, rel=1e-3) and raw["drift"] == pytest.approx(0.5, rel=1e-3)
    assert raw["mape_drift_removed"] < 1e-3  # one common factor explains all of it
    assert norm["mape"] < 1e-4 and abs(norm["drift"]) < 1e-4
    assert c["speed"]["ratio_other_to_base"] == pytest.approx(1.5, rel=1e-3)
    assert sum(f["n"] for f in c["per_family"].values()) == 4
    assert {(a["stat"], a["canary_normalised"], a["label_passes"]) for a in c["ablation"]} >= {
        ("cpu_ms_min", False, "1"), ("cpu_ms_min", True, "all"), ("latency_ms_median", True, "1")}
    assert c["kernels"]["raw"] is None  # measured without kernel profiles
    from archcast.service.calibration import reference_from_dataset

    ref = reference_from_dataset(base)  # what a checkpoint trained on it records for archcast calibrate
    assert set(ref) == {"conv", "depthwise", "attention", "matmul", "memory"} and all(v > 0 for v in ref.values())
    text = render_comparison(c)
    assert "4 models in both" in text and "canary_normalised" in text


def test_compare_refuses_what_is_not_comparable(tmp_path, fake_platform):  # noqa: F811
    tp.CLOCK = FakeClock(slow_from=10 ** 9, factor=1.0)
    a = _campaign(tmp_path, "a", fake_platform, samples(2))
    b = _campaign(tmp_path, "b", fake_platform, samples(2, start=5))
    with pytest.raises(InvalidInputError, match="no model in common"):
        compare_datasets(a.path, b.path)

    from archcast.profile import Platform

    newer = Platform("fake-1t", backend="fake-drift", device="fake", runtime="fake", runtime_version="1")
    c = _campaign(tmp_path, "c", newer, samples(2))
    with pytest.raises(InvalidInputError, match="different platforms.*--cross-platform"):
        compare_datasets(a.path, c.path)
    # asked for: how far apart two platforms are, said to be that
    x = compare_datasets(a.path, c.path, cross_platform=True)
    assert x["cross_platform"] is True and x["n_common"] == 2 and "label" in x
    assert "not a noise floor" in render_comparison(x)
    assert compare_datasets(a.path, a.path, cross_platform=True)["cross_platform"] is False


def test_cli_samples_of_a_data_set_then_compare(tmp_path, capsys):
    from archcast.cli import main as cli_main

    db = str(tmp_path / "c.db")
    run = ["--min-runs", "3", "--min-time", "0", "--no-kernels", "--workers", "0", "--no-progress", "--db", db]
    assert cli_main(["profile", "--family", NAME, "--count", "3", "--passes", "2", "--campaign",
                     str(tmp_path / "v"), *run]) == 0
    ds = str(tmp_path / "v-ds")
    assert cli_main(["dataset", "export", "--db", db, "--platform", "ort-cpu-1t", "--campaign", str(tmp_path / "v"),
                     "--out", ds, "--no-progress"]) == 0
    capsys.readouterr()
    assert cli_main(["profile", "--samples-of", ds, "--count", "2", "--passes", "2", "--campaign",
                     str(tmp_path / "rt"), *run]) == 0
    assert "collected 2 models" in capsys.readouterr().out
    rt = str(tmp_path / "rt-ds")
    assert cli_main(["dataset", "export", "--db", db, "--platform", "ort-cpu-1t", "--campaign", str(tmp_path / "rt"),
                     "--out", rt, "--no-progress"]) == 0
    capsys.readouterr()
    assert cli_main(["dataset", "compare", ds, rt, "--out", str(tmp_path / "c.json")]) == 0
    assert "2 models in both" in capsys.readouterr().out
    assert json.loads((tmp_path / "c.json").read_text())["n_common"] == 2
    # bad combinations: one line each, exit 2
    assert cli_main(["profile", "--samples-of", ds, "--count", "2", "--db", db]) == 2
    assert "--passes N --campaign DIR" in capsys.readouterr().err
    assert cli_main(["profile", "--samples-of", ds, "--count", "2", "--passes", "2", "--threads", "2",
                     "--campaign", str(tmp_path / "x"), "--db", db]) == 2
    assert "not this one" in capsys.readouterr().err
    assert cli_main(["profile", "--samples-of", ds, "--passes", "2", "--campaign", str(tmp_path / "x"),
                     "--db", db]) == 2
    assert "--count N" in capsys.readouterr().err
