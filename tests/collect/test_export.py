"""Exporting a latency data set from a store (format 1) and the dataset CLI."""

from __future__ import annotations

import csv
import json
import lzma
from pathlib import Path

import pytest

from archcast.cli import main as cli_main
from archcast.collect.export import export_latency_dataset
from archcast.data.latency_dataset import DATA_FILES
from archcast.profile import default_platform
from archcast.store import Store, StoreError
from tests.data.latency_fixture import (
    FAST,
    TinyConvFamily,
    make_exported,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return make_exported(tmp_path_factory.mktemp("latency"))


def test_export_writes_compact_sorted_files(exported):
    assert {p.name for p in exported.iterdir()} >= {*DATA_FILES, "manifest.json"}
    plat = json.loads((exported / "platform.json").read_text())
    assert plat["platform_id"] == default_platform().platform_id and plat["threads"] == 1 and plat["created"]
    models = list(csv.DictReader(open(exported / "models.csv")))
    assert [(m["family"], m["seed"]) for m in models] == [
        ("tiny-latency-conv", "0"), ("tiny-latency-conv", "1"), ("tiny-latency-mlp", "0"), ("tiny-latency-mlp", "1")]
    assert json.loads(models[0]["generator_config"]) == TinyConvFamily().sample(0).config
    meas = list(csv.DictReader(open(exported / "measurements.csv")))
    assert [m["fingerprint"] for m in meas] == [m["fingerprint"] for m in models]
    for m in meas:  # 5 significant digits at most
        for k in ("latency_ms_median", "latency_ms_min", "latency_cv"):
            assert len(m[k].replace(".", "").replace("-", "").lstrip("0").split("e")[0]) <= 5
        assert m["measured_at"].endswith("Z") and int(m["n_runs"]) >= 3
    (fail,) = list(csv.DictReader(open(exported / "failures.csv")))
    assert fail["seed"] == "99" and "cannot be built" in fail["error"]
    (alias,) = list(csv.DictReader(open(exported / "aliases.csv")))
    assert alias["seed"] == "7" and alias["fingerprint"] == models[2]["fingerprint"]
    with lzma.open(exported / "graphs.jsonl.xz", "rt") as fh:
        assert len(fh.read().splitlines()) == 4
    man = json.loads((exported / "manifest.json").read_text())
    assert man["counts"] == {"models": 4, "failures": 1, "aliases": 1} and man["measure_kw"] == FAST


def test_export_is_deterministic_and_refuses_empty_platforms(exported, tmp_path):
    store = Store(exported.parent / "src.db")
    again = export_latency_dataset(store, tmp_path / "again", default_platform().platform_id, measure_kw=FAST)
    for name in (*DATA_FILES, "manifest.json"):
        assert (again / name).read_bytes() == (exported / name).read_bytes(), name
    with pytest.raises(StoreError, match="no current ok measurement"):
        export_latency_dataset(store, tmp_path / "none", default_platform().platform_id, batch_size=2)
    with pytest.raises(StoreError, match="no platform 'nope'"):
        export_latency_dataset(store, tmp_path / "none", "nope")


def test_cli_export_verify_and_one_line_errors(exported, tmp_path, capsys):
    db = str(exported.parent / "src.db")
    out = tmp_path / "cli"
    assert cli_main(["dataset", "export", "--db", db, "--platform", default_platform().name, "--out", str(out),
                     "--min-runs", "3", "--min-time", "0", "--no-progress"]) == 0
    assert "4 models in 2 families, 1 failures, 1 aliases" in capsys.readouterr().out
    assert cli_main(["dataset", "verify", str(out), "--count", "1", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("ok:")
    assert cli_main(["dataset", "datasheet", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a directory" in err
    assert cli_main(["dataset", "export", "--db", db, "--platform", "x", "--out", str(out), "--min-runs", "3"]) == 2
    assert "give both --min-runs and --min-time" in capsys.readouterr().err
    assert cli_main(["dataset"]) == 2
