"""Profile many models into a :class:`~archcast.store.Store`, resumably, with worker processes.

:func:`profile_samples` (zoo samples) and :func:`profile_onnx_files` (ONNX files) hand tasks to
persistent worker processes (``spawn``: each keeps torch/onnx/onnxruntime imported and loops over
its task queue). A worker exports the sample's weight-free ONNX, reads it as a
:class:`~archcast.graph.NetGraph` (fingerprint + IR), and measures it with the platform's backend;
the parent writes every result to the store as it arrives (one transaction each). So:

* resumable: samples with a current row on (platform, batch size) are skipped before any export;
  a graph already measured under another seed is recognised by its fingerprint and not measured
  again; after Ctrl-C or a crash, everything written stays and nothing is measured twice;
* failures are data: an export, IR or runtime failure is recorded as ``status = "failed"`` with
  its reason (samples that produced no graph get a stub row, see :func:`archcast.store.sample_key`);
  a worker that dies (segfault) or exceeds ``timeout_s`` is replaced and its model recorded failed.

``workers=0`` runs everything in this process (debugging; no isolation from crashes). Keep
``workers * platform.threads`` within the CPU cores, or measurements disturb each other.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from archcast.errors import ArchcastError, InvalidInputError
from archcast.profile.measurement import Measurement, MeasurementError
from archcast.profile.platform import Platform, get_backend

if TYPE_CHECKING:
    from archcast.graph.ir import NetGraph
    from archcast.store.store import Store
    from archcast.zoo.base import ZooSample

_BUILTIN_ZOO_PREFIX = "archcast.zoo."
_POLL_S = 0.2


@dataclass
class _Task:
    index: int
    sample: "ZooSample | None" = None
    onnx_path: str | None = None

    @property
    def key(self) -> str:
        return self.sample.key if self.sample is not None else str(self.onnx_path)


@dataclass
class _Result:
    index: int
    status: str  # ok | failed | duplicate
    graph: "NetGraph | None" = None
    onnx_bytes: bytes | None = None  # weight-free, kept only for file tasks (not regenerable)
    stub_key: str | None = None  # failures without a graph
    batch_size: int | None = None
    measurement: Measurement | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class ProfileReport:
    """What a profiling run did.

    Attributes:
        total: tasks given. skipped: already measured (resume). ok / failed: written now.
        duplicates: graphs found already measured under another sample (not re-measured).
        wall_s: seconds from start (workers starting included) to the last write.
        stage_s: mean seconds of each worker stage (``export``, ``ir``, ``session``, ``measure``,
            ``task`` = the whole task) over the models of this run that reached that stage.
        failures: ``(sample key or file, reason)`` of the failures, in order.
    """

    total: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    duplicates: int = 0
    wall_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.ok + self.failed + self.duplicates

    @property
    def models_per_hour(self) -> float:
        return self.processed / self.wall_s * 3600.0 if self.wall_s > 0 else 0.0

    def line(self) -> str:
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in self.stage_s.items() if k != "task")
        return (f"profiled {self.processed} models ({self.ok} ok, {self.failed} failed, {self.duplicates} duplicate), "
                f"skipped {self.skipped} already measured; {self.wall_s:.1f} s, "
                f"{self.models_per_hour:.0f} models/hour" + (f"; per model: {stages}" if stages else ""))


# ---------------------------------------------------------------------------- worker side
def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")[:2000]


class _TaskRunner:
    """Runs tasks in one process; holds the backend and a read-only store for the duplicate check."""

    def __init__(self, platform: Platform, batch_size: int | None, db_url: str | None, include_failed: bool,
                 measure_kw: dict[str, Any]) -> None:
        self.platform = platform
        self.batch_size = batch_size
        self.db_url = db_url
        self.include_failed = include_failed
        self.measure_kw = measure_kw
        self.backend = get_backend(platform.backend)
        self._store: Store | None = None

    def _already(self, key: str, batch_size: int) -> bool:
        if self.db_url is None:
            return False
        if self._store is None:
            from archcast.store.store import Store

            self._store = Store(self.db_url, create=False)
        return self._store.has_measurement(key, self.platform.platform_id, batch_size,
                                           include_failed=self.include_failed)

    def run(self, task: _Task) -> _Result:
        from archcast.frontends.onnx import load_onnx, strip_weights
        from archcast.store.store import onnx_key, sample_key

        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        res = _Result(task.index, "failed", batch_size=self.batch_size)
        try:
            if task.sample is not None:
                from archcast.zoo import export_sample

                try:
                    data = export_sample(task.sample, batch_size=self.batch_size or 1, weight_free=True)
                except Exception as e:  # noqa: BLE001 - a family's build may raise anything: record it
                    res.stub_key, res.error = sample_key(task.sample), f"export: {_first_line(e)}"
                    res.batch_size = self.batch_size or 1
                    return res
                timings["export"] = time.perf_counter() - t0
            else:
                data = Path(task.onnx_path).read_bytes()
            t1 = time.perf_counter()
            try:
                graph = load_onnx(data, name=task.sample.key if task.sample else Path(task.onnx_path).stem)
            except ArchcastError as e:
                res.stub_key = sample_key(task.sample) if task.sample else onnx_key(data)
                res.error, res.batch_size = f"ir: {e}", self.batch_size or 1
                if self._already(res.stub_key, res.batch_size):
                    res.status = "duplicate"
                return res
            timings["ir"] = time.perf_counter() - t1
            if task.sample is not None:
                graph.meta.update(family=task.sample.family, seed=int(task.sample.seed))
            else:
                import onnx

                res.onnx_bytes = strip_weights(onnx.load_model_from_string(data)).SerializeToString()
            batch = self.batch_size or int(graph.meta.get("batch_size", 1) or 1)
            res.graph, res.batch_size = graph, batch
            if self._already(graph.fingerprint(), batch):
                res.status = "duplicate"
                return res
            try:
                m = self.backend.measure(data, self.platform, batch, name=task.key, **self.measure_kw)
            except MeasurementError as e:
                res.error = f"{e.stage}: {e.reason}"
                return res
            timings["session"], timings["measure"] = m.session_s, m.measure_s
            res.status, res.measurement = "ok", m
            return res
        finally:
            timings["task"] = time.perf_counter() - t0
            res.timings = timings


def _worker_main(wid: int, task_q: Any, result_q: Any, init: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        for mod in init["modules"]:
            importlib.import_module(mod)
        import onnx  # noqa: F401 - warm the imports once per worker
        import onnxruntime  # noqa: F401

        import archcast.frontends.onnx  # noqa: F401
        runner = _TaskRunner(init["platform"], init["batch_size"], init["db_url"], init["include_failed"],
                             init["measure_kw"])
    except BaseException as e:  # noqa: BLE001 - report why this worker cannot start, then exit
        result_q.put(("dead", wid, _first_line(e)))
        return
    while True:
        task = task_q.get()
        if task is None:
            return
        try:
            result = runner.run(task)
        except Exception as e:  # noqa: BLE001 - keep the worker alive; the task is recorded failed
            result = _Result(task.index, "failed", error=f"worker: {_first_line(e)}", batch_size=runner.batch_size or 1,
                             stub_key=None)
        result_q.put(("result", wid, result))


class _Worker:
    def __init__(self, ctx: Any, wid: int, result_q: Any, init: dict[str, Any]) -> None:
        self.wid = wid
        self.task_q = ctx.SimpleQueue()
        self.proc = ctx.Process(target=_worker_main, args=(wid, self.task_q, result_q, init), daemon=True,
                                name=f"archcast-profile-{wid}")
        self.proc.start()
        self.task: _Task | None = None
        self.since = 0.0

    def give(self, task: _Task) -> None:
        self.task, self.since = task, time.monotonic()
        self.task_q.put(task)

    def stop(self, grace_s: float = 3.0) -> None:
        if self.proc.is_alive():
            try:
                self.task_q.put(None)
            except (OSError, ValueError):
                pass
            self.proc.join(grace_s)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(grace_s)


# ---------------------------------------------------------------------------- parent side
def _family_modules(samples: Iterable["ZooSample"]) -> list[str]:
    """Modules defining the samples' families outside archcast's built-ins (e.g. a test's family):
    spawned workers import them so that the families are registered there too."""
    from archcast.zoo.base import FAMILIES

    mods = []
    for fam in sorted({s.family for s in samples}):
        if fam in FAMILIES:
            mod = FAMILIES.get(fam).__module__
            if not mod.startswith(_BUILTIN_ZOO_PREFIX) and mod not in ("__main__", "__mp_main__") and mod not in mods:
                mods.append(mod)
    return mods


class _Writer:
    """Writes results to the store and keeps the report."""

    def __init__(self, store: "Store", platform: Platform, tasks: dict[int, _Task], report: ProfileReport,
                 bar: Any) -> None:
        self.store, self.platform, self.tasks, self.report, self.bar = store, platform, tasks, report, bar
        self._stage_sum: dict[str, float] = {}
        self._stage_n: dict[str, int] = {}

    def write(self, r: _Result) -> None:
        task = self.tasks[r.index]
        if r.status == "duplicate":
            self.report.duplicates += 1
            if task.sample is not None and r.graph is not None:
                fp = self.store.add_graph(r.graph, task.sample)  # no-op unless only another store had it
                self.store.add_alias(task.sample, fp)
        elif r.graph is not None:
            fp = self.store.add_graph(r.graph, task.sample, onnx_bytes=r.onnx_bytes)
            self.store.record(fp, self.platform, r.measurement if r.status == "ok" else (r.error or "failed"),
                              batch_size=r.batch_size)
        else:
            from archcast.store.store import onnx_key, sample_key

            key = r.stub_key or (sample_key(task.sample) if task.sample else onnx_key(Path(task.key).read_bytes()))
            self.store.add_stub(key, sample=task.sample, name=task.key)
            self.store.record(key, self.platform, r.error or "failed", batch_size=r.batch_size or 1)
        if r.status == "ok":
            self.report.ok += 1
        elif r.status == "failed":
            self.report.failed += 1
            self.report.failures.append((task.key, r.error or "failed"))
        if r.status != "duplicate":
            for k, v in r.timings.items():
                self._stage_sum[k] = self._stage_sum.get(k, 0.0) + v
                self._stage_n[k] = self._stage_n.get(k, 0) + 1
            self.report.stage_s = {k: v / self._stage_n[k] for k, v in self._stage_sum.items()}
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(ok=self.report.ok, failed=self.report.failed, refresh=False)


def _run(tasks: list[_Task], skipped: int, store: "Store", platform: Platform, batch_size: int | None,
         workers: int, progress: bool, retry_failed: bool, timeout_s: float, measure_kw: dict[str, Any],
         modules: list[str], remeasure: bool = False) -> ProfileReport:
    if workers < 0:
        raise InvalidInputError(f"workers must be >= 0 (0 = in this process); got {workers}")
    if timeout_s <= 0:
        raise InvalidInputError(f"timeout_s must be > 0; got {timeout_s}")
    backend = get_backend(platform.backend)
    backend.check_available(platform)
    cores = os.cpu_count() or 1
    if workers * platform.threads > cores:
        warnings.warn(f"{workers} workers x {platform.threads} threads exceed {cores} CPU cores: "
                      "measurements will disturb each other", RuntimeWarning, stacklevel=3)
    store.add_platform(platform)
    t_start = time.perf_counter()
    report = ProfileReport(total=len(tasks) + skipped, skipped=skipped)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=f"profile {platform.name}", unit="model", dynamic_ncols=True)
    writer = _Writer(store, platform, {t.index: t for t in tasks}, report, bar)
    db_url = None if store.path is None and store.url.get_backend_name() == "sqlite" else \
        store.url.render_as_string(hide_password=False)
    if remeasure:
        db_url = None  # workers skip their "already measured" check: every task is measured again
    try:
        if workers == 0:
            runner = _TaskRunner(platform, batch_size, db_url, not retry_failed, measure_kw)
            for t in tasks:
                writer.write(runner.run(t))
        else:
            _run_pool(tasks, writer, workers, {
                "platform": platform, "batch_size": batch_size, "db_url": db_url,
                "include_failed": not retry_failed, "measure_kw": measure_kw, "modules": modules,
            }, timeout_s)
    finally:
        report.wall_s = time.perf_counter() - t_start
        if bar is not None:
            bar.close()
            print(report.line(), file=sys.stderr)
    return report


def _run_pool(tasks: list[_Task], writer: _Writer, n_workers: int, init: dict[str, Any], timeout_s: float) -> None:
    ctx = mp.get_context("spawn")
    result_q = ctx.Queue()
    todo = deque(tasks)
    pool: dict[int, _Worker] = {}
    next_id = 0

    def start() -> None:
        nonlocal next_id
        pool[next_id] = _Worker(ctx, next_id, result_q, init)
        next_id += 1

    def handle(msg: tuple) -> None:
        kind, wid, payload = msg
        w = pool.get(wid)
        if kind == "dead":
            raise ArchcastError(f"a profiling worker cannot start: {payload}")
        if w is not None and w.task is not None and w.task.index == payload.index:
            w.task = None
        writer.write(payload)

    def fail_inflight(w: _Worker, reason: str) -> None:
        task = w.task
        w.task = None
        if task is not None:
            writer.write(_Result(task.index, "failed", error=reason, batch_size=init["batch_size"] or 1,
                                 timings={"task": time.monotonic() - w.since}))

    try:
        for _ in range(min(n_workers, len(todo))):
            start()
        while todo or any(w.task is not None for w in pool.values()):
            for w in pool.values():
                if w.task is None and todo:
                    w.give(todo.popleft())
            try:
                handle(result_q.get(timeout=_POLL_S))
                continue
            except queue.Empty:
                pass
            for wid in list(pool):
                w = pool[wid]
                if w.task is None:
                    continue
                if not w.proc.is_alive():
                    while True:  # its result may still sit in the queue
                        try:
                            handle(result_q.get_nowait())
                        except queue.Empty:
                            break
                    if w.task is not None:
                        fail_inflight(w, f"worker: process died (exit code {w.proc.exitcode}) while measuring")
                    del pool[wid]
                    start()
                elif time.monotonic() - w.since > timeout_s:
                    w.proc.kill()
                    w.proc.join(5)
                    fail_inflight(w, f"worker: timed out after {timeout_s:g} s")
                    del pool[wid]
                    start()
    finally:
        for w in pool.values():
            w.stop(grace_s=0.0 if todo else 3.0)
        result_q.close()
        result_q.cancel_join_thread()


# ---------------------------------------------------------------------------- public API
def profile_samples(
    samples: Sequence["ZooSample"],
    store: "Store",
    platform: Platform,
    batch_size: int = 1,
    workers: int = 1,
    progress: bool = True,
    *,
    retry_failed: bool = False,
    timeout_s: float = 600.0,
    measure_kw: dict[str, Any] | None = None,
    worker_modules: Sequence[str] = (),
    remeasure: bool = False,
) -> ProfileReport:
    """Export, read and measure zoo ``samples`` on ``platform``; write each result to ``store``.

    Samples with a current row on (platform, ``batch_size``) are skipped (failed ones too, unless
    ``retry_failed``). ``measure_kw`` goes to the backend (e.g. ``min_runs``, ``min_time_s``,
    ``profile_nodes``). ``worker_modules`` are imported by each worker before its first task (the
    modules of families registered outside archcast are found automatically). ``remeasure``
    measures every sample again even when it has a row: the new row becomes current and the old
    one stays as history.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1; got {batch_size}")
    samples = list(samples)
    done = set() if remeasure else store.measured_samples(platform.platform_id, batch_size,
                                                          include_failed=not retry_failed)
    tasks, seen = [], set()
    for s in samples:
        ident = (s.family, int(s.seed), str(s.generator_version), s.config_json())
        if ident in done or ident in seen:
            continue
        seen.add(ident)
        tasks.append(_Task(len(tasks), sample=s))
    modules = list(worker_modules) + [m for m in _family_modules(samples) if m not in worker_modules]
    return _run(tasks, len(samples) - len(tasks), store, platform, batch_size, workers, progress, retry_failed,
                timeout_s, dict(measure_kw or {}), modules, remeasure)


def profile_onnx_files(
    paths: Sequence[str | Path],
    store: "Store",
    platform: Platform,
    workers: int = 1,
    progress: bool = True,
    *,
    retry_failed: bool = False,
    timeout_s: float = 600.0,
    measure_kw: dict[str, Any] | None = None,
) -> ProfileReport:
    """Measure ONNX files (batch size = their first input's first dim) into ``store``; files whose
    graph is already measured on ``platform`` are not measured again. Their weight-free ONNX is
    stored (they cannot be regenerated)."""
    files = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise InvalidInputError(f"ONNX file {str(path)!r} does not exist")
        files.append(str(path.resolve()))
    tasks = [_Task(i, onnx_path=f) for i, f in enumerate(dict.fromkeys(files))]
    return _run(tasks, 0, store, platform, None, workers, progress, retry_failed, timeout_s,
                dict(measure_kw or {}), [])


__all__ = ["ProfileReport", "profile_onnx_files", "profile_samples"]
