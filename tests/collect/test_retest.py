"""The noise floor (retest in fresh processes) and the datasheet."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from archcast.collect.datasheet import write_datasheet
from archcast.collect.retest import retest_latency
from archcast.data.latency_dataset import LatencyDataset, load_latency_dataset
from archcast.errors import InvalidInputError
from archcast.profile import Platform, default_platform
from tests.data.latency_fixture import (
    FAST,
    copy,
    make_exported,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return make_exported(tmp_path_factory.mktemp("latency"))


def test_retest_writes_noise_floor_and_datasheet(exported, tmp_path):
    ds_dir = copy(exported, tmp_path)
    nf = retest_latency(ds_dir, count=2, seed=0, workers=0, measure_kw=FAST)
    assert nf["n"] == 2 and nf["n_not_paired"] == 0 and nf["platform_id"] == default_platform().platform_id
    for key in ("mape", "median_ape", "p90_ape", "max_ape"):
        assert 0 <= nf["median_latency"][key] < 10 and 0 <= nf["min_latency"][key] < 10
    # a run CV above 1 happens on a loaded machine; the figure must exist and be positive
    assert 0 < nf["median_cv_all"] < 100 and sum(f["n"] for f in nf["per_family"].values()) == 2
    assert json.loads((ds_dir / "noise_floor.json").read_text()) == nf
    rows = list(csv.DictReader(open(ds_dir / "retest.csv")))
    assert len(rows) == 2 and all(r["status"] == "ok" and float(r["retest_median_ms"]) > 0 for r in rows)
    assert load_latency_dataset(ds_dir).fingerprint == load_latency_dataset(exported).fingerprint  # data untouched

    sheet = write_datasheet(ds_dir)
    text = sheet.read_text()
    for needle in ("tiny-latency-conv", "tiny-latency-mlp", "**all**", "test-retest MAPE", "min-runs 3",
                   default_platform().device, "archcast dataset export"):
        assert needle in text, needle
    for png in (ds_dir / "latency_hist.png", ds_dir / "hist" / "tiny-latency-conv.png",
                ds_dir / "hist" / "tiny-latency-mlp.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_retest_refuses_another_platform_and_the_source_store(exported, tmp_path):
    ds = load_latency_dataset(exported)
    other = {**ds.platform, "device": "Some Other CPU"}
    other["platform_id"] = Platform.from_dict(other).platform_id
    moved = LatencyDataset(ds.path, ds.records, other, ds.manifest, ds.failures, ds.aliases)
    with pytest.raises(InvalidInputError, match="is not this machine: .*Some Other CPU"):
        retest_latency(moved, count=1, workers=0, measure_kw=FAST)
    edited = LatencyDataset(ds.path, ds.records, {**ds.platform, "threads": 2}, ds.manifest, ds.failures, ds.aliases)
    with pytest.raises(InvalidInputError, match="edited"):
        retest_latency(edited, count=1, workers=0)
    ds_dir = copy(exported, tmp_path)
    with pytest.raises(InvalidInputError, match="separate --db"):
        retest_latency(ds_dir, count=1, workers=0, db=exported.parent / "src.db", measure_kw=FAST)
