"""Regenerating data set models from family + seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archcast.collect.verify import verify_regeneration
from archcast.data.latency_dataset import load_latency_dataset
from archcast.errors import InvalidInputError
from tests.data.latency_fixture import (
    copy,
    make_exported,
    rewrite_csv,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return make_exported(tmp_path_factory.mktemp("latency"))


def test_verify_regeneration_finds_nothing_then_a_tampered_config(exported, tmp_path):
    assert verify_regeneration(exported, count=20) == []
    ds_dir = copy(exported, tmp_path)

    def tamper(rows):
        cfg = json.loads(rows[1][4])
        cfg["channels"] += 1
        rows[1][4] = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
        return rows

    rewrite_csv(ds_dir / "models.csv", tamper)
    with pytest.raises(InvalidInputError, match="models.csv differs from the checksum"):
        load_latency_dataset(ds_dir)
    bad = verify_regeneration(load_latency_dataset(ds_dir, verify_checksums=False), count=20)
    assert {m.field for m in bad} == {"config"} and bad[0].seed == 0 and bad[0].family == "tiny-latency-conv"
    assert "channels" in bad[0].line()


def test_verify_reports_a_changed_generator_and_graph_cache(exported, tmp_path):
    ds = load_latency_dataset(copy(exported, tmp_path))
    r = ds.records[2]
    ds.records[2] = type(r)(**{**r.__dict__, "generator_version": "0"})
    ds.records[3] = type(r)(**{**ds.records[3].__dict__, "fingerprint": "0" * 32})
    fields = {(m.seed, m.field) for m in verify_regeneration(ds, count=20)}
    assert fields == {(0, "generator_version"), (1, "graph_cache"), (1, "fingerprint")}
