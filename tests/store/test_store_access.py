"""What ``archcast serve`` needs from the store (pushes, tokens, pages) and the store defects of the
issue-9 audit: a read never creates a database, a missing driver or a damaged file is one clear error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from archcast.graph.ir import NetGraph, Node
from archcast.profile import Platform
from archcast.store import Store, StoreCorruptError, StoreError, StoreInputError
from archcast.store.store import PUSHABLE_COLUMNS

PLATFORM = Platform("test-cpu", device="test-device", runtime_version="0")


def graph(i: int) -> NetGraph:
    w = i + 1
    return NetGraph([Node("conv", "Conv", {"kernel_shape": (3, 3)}, [(1, 3, 8, 8)], [(1, w, 8, 8)], flops=10 * w),
                     Node("relu", "Relu", {}, [(1, w, 8, 8)], [(1, w, 8, 8)])], [(0, 1)], name=f"g{i}").validate()


def item(i: int, **kw):
    g = graph(i)
    return {"fingerprint": g.fingerprint(), "graph": g, "provenance": {"family": "fam", "seed": i},
            "platform": PLATFORM, "batch_size": 1,
            "values": {"status": "ok", "latency_ms_median": 1.0 + i, "n_runs": 5, "measured_at": "2026-01-02T03:04:05"},
            **kw}


# ---------------------------------------------------------------------------- pushes, pages, tokens
def test_ingest_is_idempotent_by_push_id_and_keeps_history(store_url):
    store = Store(store_url)
    (a, created), = store.ingest([item(0, push_id="p-00000001")])
    assert created and store.ingest([item(0, push_id="p-00000001")]) == [(a, False)]  # a retried push
    (b, created), = store.ingest([item(0, push_id="p-00000002")])
    assert created and b > a
    rows = store.measurements(current_only=False)
    assert [(r.id, r.is_current) for r in rows] == [(a, False), (b, True)]
    assert rows[0].family == "fam" and rows[0].seed == 0 and rows[0].source == "push"
    assert rows[0].measured_at.isoformat() == "2026-01-02T03:04:05"
    assert store.known_push_ids(["p-00000001", "p-00000002", "p-00000003"]) == {"p-00000001", "p-00000002"}
    vals = store.row_values([a])[a]
    assert set(vals) == set(PUSHABLE_COLUMNS) and vals["latency_ms_median"] == 1.0


@pytest.mark.parametrize("change, match", [
    ({"values": {"status": "maybe"}}, "status must be one of ok, failed"),
    ({"values": {"status": "ok", "latency_ms_median": float("nan")}}, "latency_ms_median must be a finite number"),
    ({"values": {"status": "ok", "n_runs": "5"}}, "n_runs must be an integer"),
    ({"values": {"status": "ok", "bogus": 1}}, "unknown measurement column.*'bogus'"),
    ({"values": {"status": "ok", "measured_at": "yesterday"}}, "measured_at must be an ISO 8601 time"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"push_id": "x"}, "push_id must be a string of 8 to 64"),
    ({"fingerprint": "f" * 32}, "the graph's fingerprint is"),
    ({"graph": None, "fingerprint": "f" * 32}, "has no graph"),
])
def test_ingest_refuses_bad_items_and_stores_nothing(tmp_path, change, match):
    store = Store(tmp_path / "a.db")
    with pytest.raises(StoreInputError, match=match):
        store.ingest([item(1), {**item(2), **change}])  # one bad item: the whole push is refused
    assert store.measurements() == []


def test_keyset_pages_and_filters(store_url):
    store = Store(store_url)
    store.ingest([item(i) for i in range(7)])
    first = store.measurements(limit=3)
    second = store.measurements(limit=3, after_id=first[-1].id)
    assert len(first) == 3 and len(second) == 3 and second[0].id > first[-1].id
    newest = store.measurements(limit=2, newest_first=True)
    assert [r.id for r in newest] == sorted((r.id for r in store.measurements()), reverse=True)[:2]
    fp = graph(4).fingerprint()
    assert [r.fingerprint for r in store.measurements(fingerprint=fp)] == [fp]
    info = store.graph_info(fp)
    assert info["has_ir"] and not info["has_onnx"] and info["family"] == "fam" and info["n_nodes"] == 2
    assert store.graph_info("nope") is None


def test_tokens_are_stored_as_digests(store_url):
    from sqlalchemy import text

    from archcast.service.auth import create_token, token_digest

    store = Store(store_url)
    tok = create_token(store, "agent-1", "write")
    assert store.token(token_digest(tok)) == ("agent-1", "write") and store.token(token_digest(tok + "x")) is None
    with store._engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT token_sha256 FROM api_tokens"))]
    assert stored == [token_digest(tok)] and tok not in stored
    with pytest.raises(StoreError, match="already has a token named 'agent-1'"):
        store.add_token("agent-1", "read", "0" * 64)
    with pytest.raises(StoreError, match="scope 'admin'"):
        store.add_token("x", "admin", "1" * 64)
    assert [t["name"] for t in store.tokens()] == ["agent-1"]
    assert store.revoke_token("agent-1") and not store.revoke_token("agent-1")


# ---------------------------------------------------------------------------- issue 9: store defects
def test_a_read_on_a_missing_store_says_so_and_creates_nothing(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(StoreError, match="x.db' does not exist"):
        Store(target, create=False)
    assert not (tmp_path / "no").exists()


def _cli(args: list[str], capsys) -> tuple[int, str]:
    from archcast.cli import main

    code = main(args)
    return code, capsys.readouterr().err


def test_cli_reads_on_a_missing_store_fail_fast_in_one_line(tmp_path, capsys, monkeypatch):
    import time

    import archcast.frontends

    example = Path(__file__).resolve().parents[2] / "src" / "archcast" / "examples" / "resnet18.onnx"
    loaded = []
    monkeypatch.setattr(archcast.frontends, "load_graph", lambda *a, **k: loaded.append(a))  # predict must stop first
    for args in (["db", "stats", "--db", str(tmp_path / "no/such/x.db")],
                 ["db", "export", "--format", "csv", "--out", str(tmp_path / "o.csv"), "--db", str(tmp_path / "m.db")],
                 ["predict", str(example), "--db", str(tmp_path / "missing.db")]):
        t0 = time.perf_counter()
        code, err = _cli(args, capsys)
        assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1, err
        assert time.perf_counter() - t0 < 5
    assert loaded == []  # the model was never read: the missing store failed first
    assert not (tmp_path / "no").exists() and not (tmp_path / "m.db").exists() and not (tmp_path / "missing.db").exists()


def test_postgresql_url_without_its_driver_is_a_store_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(StoreError, match=r"needs the PostgreSQL driver 'psycopg'.*pip install 'psycopg\[binary\]'"):
        Store("postgresql://user@127.0.0.1:1/db")


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory) -> bytes:
    """The bytes of a checkpointed SQLite store with 150 graphs and measurements."""
    path = tmp_path_factory.mktemp("filled") / "a.db"
    store = Store(path)
    store.ingest([item(i) for i in range(150)])
    store.close()
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path.read_bytes()


def _leaf_pages(data: bytes, tmp: Path, table: str) -> list[int]:
    """Leaf pages holding rows of ``table`` (via SQLite's dbstat table)."""
    import sqlite3

    probe = tmp / "probe.db"
    probe.write_bytes(data)
    con = sqlite3.connect(probe)
    try:
        return [r[0] for r in con.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' AND ncell > 0 "
                                          "ORDER BY pageno", (table,))]
    except sqlite3.OperationalError:  # SQLite built without dbstat: the middle of the file is a data page here
        return [len(data) // 2 // 4096 + 1]
    finally:
        con.close()


@pytest.mark.parametrize("table", ["graphs", "measurements", "ix_measurements_graph"])
def test_garbage_in_the_middle_of_the_file_is_reported(tmp_path, filled_store, table, capsys):
    """2 KB of garbage over a page that holds data (garbage in unused space damages nothing and
    cannot be told apart: SQLite keeps no page checksums)."""
    pages = _leaf_pages(filled_store, tmp_path, table)
    page = pages[len(pages) // 2]
    db = tmp_path / "a.db"
    data = bytearray(filled_store)
    at = (page - 1) * 4096 + 512
    data[at:at + 2048] = np.random.default_rng(page).bytes(2048)
    db.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match="damaged|not a readable"):
        Store(db, create=False)
    assert db.read_bytes() == bytes(data)  # left untouched
    code, err = _cli(["db", "stats", "--db", str(db)], capsys)
    assert code == 2 and "damaged" in err and len(err.strip().splitlines()) == 1, err
