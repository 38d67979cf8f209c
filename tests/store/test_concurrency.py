"""8 writer processes on one fresh store, one of them killed mid-run: nothing lost, nothing doubled.

Every writer opens the store itself (so the first open, which creates the schema, races too),
then records measurements of its own graphs and of 4 graphs all writers share (the one-current-row
rule is contended), and pushes one row per step with a push_id every writer uses (exactly one row
may win). After each commit a writer appends ``<step> <row id>`` to its log; the killed writer's
log says what it had committed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import pytest
from sqlalchemy import text

from archcast.graph.ir import NetGraph, Node
from archcast.profile import Measurement, Platform
from archcast.store import Store

pytestmark = pytest.mark.subprocess

PLATFORM = Platform("test-cpu", device="test-device", runtime_version="0")
WRITERS, STEPS, SHARED = 8, 12, 4
KILLED = WRITERS - 1


def graph(i: int) -> NetGraph:
    w = i + 1
    return NetGraph([Node("conv", "Conv", {"kernel_shape": (3, 3)}, [(1, 3, 8, 8)], [(1, w, 8, 8)], flops=10 * w),
                     Node("relu", "Relu", {}, [(1, w, 8, 8)], [(1, w, 8, 8)])], [(0, 1)], name=f"g{i}").validate()


def _writer(url: str, k: int, log: str, steps: int) -> None:
    store = Store(url)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    step = 0
    while step < steps:
        own = store.add_graph(graph(1000 * (k + 1) + step))
        m = Measurement(1.0, 1.0, 1.0, 1.0, 0.0, 0.0, n_runs=step + 1, warmup_runs=k, batch_size=1, host=f"w{k}")
        a = store.record(own, PLATFORM, m)
        shared = store.add_graph(graph(step % SHARED))
        b = store.record(shared, PLATFORM, m)
        (c, _), = store.ingest([{"fingerprint": shared, "platform": PLATFORM, "batch_size": 2, "push_id": f"push-{step:06d}",
                                 "values": {"status": "ok", "latency_ms_median": 2.0, "host": f"w{k}"}}])
        os.write(fd, f"{step} {a} {b} {c}\n".encode())
        step += 1
    os.close(fd)
    store.close()


def test_eight_writers_one_killed_nothing_lost_or_duplicated(store_url, tmp_path):
    ctx = mp.get_context("fork")
    logs = [tmp_path / f"w{k}.log" for k in range(WRITERS)]
    procs = [ctx.Process(target=_writer, args=(store_url, k, str(logs[k]), STEPS if k != KILLED else 10 ** 6))
             for k in range(WRITERS)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (not logs[KILLED].exists() or len(logs[KILLED].read_text().splitlines()) < 3):
        time.sleep(0.02)
    os.kill(procs[KILLED].pid, signal.SIGKILL)  # mid-run: between or inside transactions
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * KILLED + [-signal.SIGKILL]

    store = Store(store_url)
    with store._engine.connect() as conn:
        rows = conn.execute(text("SELECT id, graph_fingerprint, batch_size, host, n_runs, push_id, is_current "
                                 "FROM measurements")).all()
    by_id = {r.id: r for r in rows}
    logged = {k: [tuple(map(int, line.split())) for line in logs[k].read_text().splitlines()] for k in range(WRITERS)}
    assert all(len(logged[k]) == STEPS for k in range(KILLED))
    n_killed = len(logged[KILLED])
    assert n_killed >= 3
    # nothing lost: every logged commit is there, with the writer's own values
    for k, entries in logged.items():
        for step, a, b, c in entries:
            assert by_id[a].host == f"w{k}" and by_id[a].n_runs == step + 1
            assert by_id[b].host == f"w{k}" and by_id[b].n_runs == step + 1
            assert by_id[c].push_id == f"push-{step:06d}"
    # nothing doubled: one row per (writer, step, graph); the killed writer at most one step past its log
    own = [(r.host, r.n_runs, r.graph_fingerprint) for r in rows if r.batch_size == 1]
    assert len(own) == len(set(own))
    per_writer = {k: sum(1 for r in rows if r.batch_size == 1 and r.host == f"w{k}") for k in range(WRITERS)}
    assert all(per_writer[k] == 2 * STEPS for k in range(KILLED))
    assert 2 * n_killed <= per_writer[KILLED] <= 2 * n_killed + 2
    pushed = [r.push_id for r in rows if r.batch_size == 2]
    assert len(pushed) == len(set(pushed)) and len(pushed) >= STEPS  # a push_id is stored once, whoever won
    # one current row per (graph, platform, batch)
    current: dict[tuple[str, int], int] = {}
    for r in rows:
        current[(r.graph_fingerprint, r.batch_size)] = current.get((r.graph_fingerprint, r.batch_size), 0) + bool(r.is_current)
    assert set(current.values()) == {1}
    # the store still takes writes at once (no lock left behind by the killed writer)
    t0 = time.monotonic()
    fp = store.add_graph(graph(99999))
    store.record(fp, PLATFORM, Measurement(1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1, 0, 1))
    assert store.has_measurement(fp, PLATFORM.platform_id, 1) and time.monotonic() - t0 < 5
