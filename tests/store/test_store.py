"""The measurement store: idempotent writes, concurrent writers, crashes, exchange formats, errors.

Tests that take ``store_url`` run on SQLite and on a real PostgreSQL server (see conftest.py).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import onnx
import pytest

from archcast.collect.exchange import export_nnlqp, export_table, import_nnlqp
from archcast.data.nnlqp import read_nnlqp, write_nnlqp
from archcast.errors import ArchcastError
from archcast.graph.ir import NetGraph, Node
from archcast.profile import Measurement, Platform
from archcast.store import Store, StoreCorruptError, StoreError, StoreLockedError
from archcast.zoo.base import FAMILIES, Family, ZooSample

PLATFORM = Platform("test-cpu", device="test-device", runtime_version="0")


class TinyStoreFamily(Family):
    """Conv stack; the NNLQP round trip regenerates its ONNX from the config."""

    name = "tiny-store-test"
    description = "test family of tests/store/test_store.py"

    def sample_config(self, rng):
        return {"channels": int(rng.integers(2, 16)), "depth": int(rng.integers(1, 3))}

    def build(self, config, batch_size=1):
        import torch

        layers, c = [], 3
        for _ in range(config["depth"]):
            layers += [torch.nn.Conv2d(c, config["channels"], 3, padding=1), torch.nn.ReLU()]
            c = config["channels"]
        return torch.nn.Sequential(*layers), (torch.randn(batch_size, 3, 8, 8),)


FAMILIES.register(TinyStoreFamily.name, TinyStoreFamily)


def tiny_graph(i: int) -> NetGraph:
    """A distinct 2-node graph per ``i`` (the width is the index)."""
    w = i + 1
    nodes = [Node("conv", "Conv", {"kernel_shape": (3, 3)}, [(1, 3, 8, 8)], [(1, w, 8, 8)], flops=10 * w, params=27 * w),
             Node("relu", "Relu", {}, [(1, w, 8, 8)], [(1, w, 8, 8)])]
    return NetGraph(nodes, [(0, 1)], name=f"g{i}").validate()


def measurement(latency_ms: float) -> Measurement:
    return Measurement.from_times([latency_ms, latency_ms * 1.1, latency_ms * 0.95], warmup_runs=1, batch_size=1,
                                  host="test-host")


def current_counts(db: Path | str | Store) -> dict[tuple[str, str, int], int]:
    """Current rows per (graph, platform, batch), read with plain SQL (SQLite file or any Store)."""
    sql = ("SELECT graph_fingerprint, platform_id, batch_size, SUM(CASE WHEN is_current THEN 1 ELSE 0 END) "
           "FROM measurements GROUP BY graph_fingerprint, platform_id, batch_size")
    if isinstance(db, Store):
        from sqlalchemy import text

        with db._engine.connect() as conn:
            rows = conn.execute(text(sql)).all()
    else:
        con = sqlite3.connect(db)
        try:
            rows = con.execute(sql).fetchall()
        finally:
            con.close()
    return {(g, p, b): n for g, p, b, n in rows}


# ---------------------------------------------------------------------------- basics
def test_record_twice_keeps_one_current_row_and_history(store_url):
    store = Store(store_url)
    fp = store.add_graph(tiny_graph(0))
    assert store.add_graph(tiny_graph(0)) == fp  # idempotent
    first = store.record(fp, PLATFORM, measurement(1.0))
    second = store.record(fp, PLATFORM, measurement(2.0))
    assert second > first
    cur = store.measurements()
    assert len(cur) == 1 and cur[0].id == second and cur[0].latency_ms_median == pytest.approx(2.0)
    assert cur[0].is_current and cur[0].status == "ok" and cur[0].n_runs == 3 and cur[0].host == "test-host"
    hist = store.measurements(current_only=False)
    assert [(r.id, r.is_current) for r in hist] == [(first, False), (second, True)]
    store.record(fp, PLATFORM, RuntimeError("boom"), batch_size=1)
    assert store.has_measurement(fp, PLATFORM.platform_id, 1)
    assert not store.has_measurement(fp, PLATFORM.platform_id, 1, include_failed=False)
    assert not store.has_measurement(fp, PLATFORM.platform_id, 2)
    (failed,) = store.measurements()
    assert failed.status == "failed" and "boom" in failed.error and failed.latency_ms_median is None
    s = store.stats()
    assert (s["graphs"], s["platforms"], s["measurements_current"], s["measurements_history"]) == (1, 1, 1, 2)
    assert store.graph(fp).fingerprint() == fp  # IR round trip through zlib JSON
    assert set(current_counts(store).values()) == {1}


def test_store_rejects_unknown_graph_platform_and_dialect(store_url):
    store = Store(store_url)
    with pytest.raises(StoreError, match="add_graph"):
        store.record("f" * 32, PLATFORM, measurement(1.0))
    fp = store.add_graph(tiny_graph(1))
    with pytest.raises(StoreError, match="add_platform"):
        store.record(fp, "no-such-platform", measurement(1.0))
    with pytest.raises(StoreError, match="batch_size"):
        store.record(fp, PLATFORM, "failed without batch")
    with pytest.raises(StoreError, match="no platform 'x'.*valid"):
        store.measurements(platform="x")
    with pytest.raises(StoreError, match="mysql.*sqlite, postgresql"):
        Store("mysql://user@host/db")
    assert store.measurements() == []


def test_location_from_url_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHCAST_DB", str(tmp_path / "env" / "x.db"))
    assert Store().path == (tmp_path / "env" / "x.db").resolve()
    assert Store(f"sqlite:///{tmp_path / 'u.db'}").path == tmp_path / "u.db"
    with pytest.raises(StoreError, match="directory"):
        Store(tmp_path)


def test_filters_and_csv_export(store_url, tmp_path):
    store = Store(store_url)
    other = Platform("other-cpu", device="d2", runtime_version="0")
    for i in range(3):
        fp = store.add_graph(tiny_graph(i), ZooSample("fam-a" if i < 2 else "fam-b", i, {"i": i}))
        store.record(fp, PLATFORM, measurement(1.0 + i))
    store.record(fp, other, measurement(9.0))
    assert len(store.measurements(family="fam-a")) == 2 and len(store.measurements(platform="other-cpu")) == 1
    assert len(store.measurements(platform=PLATFORM)) == 3
    path = export_table(store, tmp_path / "out" / "m.csv", "csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {"fingerprint", "latency_ms_median", "platform_id", "flops", "n_nodes"} <= set(rows[0])
    assert sorted(float(r["latency_ms_median"]) for r in rows) == pytest.approx([1.0, 2.0, 3.0, 9.0])
    assert rows[0]["family"] == "fam-a" and json.loads(rows[0]["generator_config"]) == {"i": 0}
    with pytest.raises(ArchcastError, match="csv, parquet"):
        export_table(store, tmp_path / "m.xlsx", "xlsx")


def test_parquet_export(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    store = Store(tmp_path / "a.db")
    fp = store.add_graph(tiny_graph(0))
    store.record(fp, PLATFORM, measurement(1.5))
    table = pq.read_table(export_table(store, tmp_path / "m.parquet", "parquet"))
    assert table.num_rows == 1 and table.column("latency_ms_median").to_pylist() == [pytest.approx(1.5)]


# ---------------------------------------------------------------------------- damaged and busy databases
def test_corrupt_database_is_reported_and_left_untouched(tmp_path):
    db = tmp_path / "bad.db"
    garbage = np.random.default_rng(0).bytes(8192)
    db.write_bytes(garbage)
    with pytest.raises(StoreCorruptError, match="bad.db.*not a readable SQLite database"):
        Store(db)
    assert db.read_bytes() == garbage


def test_locked_database_is_reported(tmp_path):
    db = tmp_path / "a.db"
    Store(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(StoreLockedError, match="a.db.*locked"):
            Store(db, busy_timeout_s=0.2).add_platform(PLATFORM)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert Store(db).add_platform(PLATFORM) == PLATFORM.platform_id


# concurrent writers and a killed writer: tests/store/test_concurrency.py (8 writers, SQLite and PostgreSQL)


# ---------------------------------------------------------------------------- NNLQP exchange
def _zoo_store(tmp_path: Path) -> tuple[Store, list[str]]:
    from archcast.frontends.onnx import load_onnx
    from archcast.zoo import export_sample, get_family

    store = Store(tmp_path / "src.db")
    fam = get_family(TinyStoreFamily.name)
    fps = []
    for seed in (0, 1):
        sample = fam.sample(seed)
        graph = load_onnx(export_sample(sample), name=sample.key)
        fp = store.add_graph(graph, sample)
        store.record(fp, PLATFORM, measurement(0.5 + seed))
        fps.append(fp)
    store.record(fps[0], PLATFORM, "failed rows are not exported", batch_size=2)
    return store, fps


def test_nnlqp_export_import_round_trip(tmp_path):
    store, fps = _zoo_store(tmp_path)
    gt = export_nnlqp(store, tmp_path / "nnlqp", PLATFORM.platform_id)
    recs = read_nnlqp(gt.parent)
    assert len(recs) == 2 and {r.model_type for r in recs} == {TinyStoreFamily.name}
    assert sorted(r.latency_ms for r in recs) == pytest.approx([0.5, 1.5])
    for r in recs:  # weight-free ONNX: float initializers keep dims, lose data
        model = onnx.load(r.onnx_path)
        assert model.graph.initializer and not any(t.raw_data or t.float_data for t in model.graph.initializer)

    dst = Store(tmp_path / "dst.db")
    counts = import_nnlqp(dst, gt.parent, PLATFORM.name)
    assert counts == {"records": 2, "graphs": 2, "measurements_added": 2, "unchanged": 0}
    a = {(r.fingerprint, r.platform_id, r.family, r.seed, r.generator_config, r.latency_ms_median)
         for r in store.measurements(status="ok")}
    b = {(r.fingerprint, r.platform_id, r.family, r.seed, r.generator_config, r.latency_ms_median)
         for r in dst.measurements()}
    assert a == b and {r.source for r in dst.measurements()} == {"nnlqp"}
    assert dst.platforms() == [PLATFORM]
    assert import_nnlqp(dst, gt.parent, PLATFORM.name)["unchanged"] == 2  # re-import changes nothing
    assert len(dst.measurements(current_only=False)) == 2


def test_nnlqp_import_of_a_foreign_data_set_keeps_its_onnx(tmp_path):
    store, _ = _zoo_store(tmp_path)
    gt = export_nnlqp(store, tmp_path / "nnlqp")
    foreign = tmp_path / "foreign"
    recs = read_nnlqp(gt.parent)
    for r in recs:  # same files, another platform id, no archcast manifest
        (foreign / "m").mkdir(parents=True, exist_ok=True)
        (foreign / "m" / r.onnx_path.name).write_bytes(r.onnx_path.read_bytes())
        r.onnx_path, r.platform_id, r.model_type = foreign / "m" / r.onnx_path.name, 7, "resnet18"
    write_nnlqp(foreign, recs)
    dst = Store(tmp_path / "dst.db")
    assert import_nnlqp(dst, foreign, "phone")["measurements_added"] == 2
    (p,) = dst.platforms()
    assert p.backend == "imported" and p.name == "phone" and "7" in p.device
    assert {r.family for r in dst.measurements()} == {"resnet18"}
    gt2 = export_nnlqp(dst, tmp_path / "again")  # no generator config: exported from the stored ONNX
    assert sorted(r.latency_ms for r in read_nnlqp(gt2.parent)) == pytest.approx([0.5, 1.5])


def test_nnlqp_export_refuses_a_graph_it_cannot_reproduce(tmp_path):
    store = Store(tmp_path / "a.db")
    fp = store.add_graph(tiny_graph(0), ZooSample(TinyStoreFamily.name, 0, {"channels": 2, "depth": 1}, "0"))
    store.record(fp, PLATFORM, measurement(1.0))
    with pytest.raises(StoreError, match="version 0"):
        export_nnlqp(store, tmp_path / "out")
    empty = Store(tmp_path / "empty.db")
    with pytest.raises(StoreError, match="no current ok measurement"):
        export_nnlqp(empty, tmp_path / "out2")
