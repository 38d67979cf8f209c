"""Worker processes that measure models, and the pool loop that feeds them.

Each worker is a persistent ``spawn`` process that keeps torch/onnx/onnxruntime imported and loops
over its own task queue. A task is a zoo sample (export, read as IR, measure), an ONNX file, a
cached weight-free ONNX of an already known graph (a later pass: measure only), or a canary. The
parent's :func:`run_pool` hands tasks out as a :class:`Scheduler` decides, replaces a worker that
dies or exceeds ``timeout_s``, and passes every result to the scheduler, which writes it.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import queue
import signal
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archcast.errors import ArchcastError
from archcast.profile.backend import get_backend
from archcast.profile.measurement import Measurement, MeasurementError

if TYPE_CHECKING:
    from archcast.graph.ir import NetGraph
    from archcast.profile.platform import Platform
    from archcast.store.store import Store
    from archcast.zoo.base import ZooSample

_POLL_S = 0.2


@dataclass
class Task:
    """One unit of work for a worker.

    ``sample``: a zoo sample to export; ``onnx_path``: an ONNX file (with ``fingerprint``: the
    cached weight-free ONNX of that known graph, measured without reading it as IR again);
    ``canary``: a canary name (its ONNX is in the worker's init). ``pass_id`` and
    ``keep_optimized`` are the collection protocol's (None/False for plain profiling).
    """

    index: int
    sample: ZooSample | None = None
    onnx_path: str | None = None
    fingerprint: str | None = None
    canary: str | None = None
    pass_id: str | None = None
    keep_optimized: bool = False
    attempt: int = 0

    @property
    def key(self) -> str:
        if self.canary is not None:
            return f"canary/{self.canary}"
        return self.sample.key if self.sample is not None else str(self.onnx_path)


@dataclass
class Result:
    """What a worker sends back for one task (``status``: ok | failed | duplicate)."""

    index: int
    status: str
    graph: NetGraph | None = None
    fingerprint: str | None = None
    onnx_bytes: bytes | None = None  # weight-free; file tasks (not regenerable) and cached passes
    stub_key: str | None = None  # failures without a graph
    batch_size: int | None = None
    measurement: Measurement | None = None
    optimized_ir: str | None = None  # NetGraph JSON of the runtime's optimised graph
    optimized_error: str | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")[:2000]


class TaskRunner:
    """Runs tasks in one process; holds the backend and a read-only store for the duplicate check.

    ``keep_onnx``: send the weight-free ONNX of zoo samples back (the collection protocol caches it
    so that later passes need no export). ``canaries``: ``{name: ONNX bytes}``.
    """

    def __init__(self, platform: Platform, batch_size: int | None, db_url: str | None, include_failed: bool,
                 measure_kw: dict[str, Any], keep_onnx: bool = False, canaries: dict[str, bytes] | None = None,
                 canary_kw: dict[str, Any] | None = None) -> None:
        self.platform = platform
        self.batch_size = batch_size
        self.db_url = db_url
        self.include_failed = include_failed
        self.measure_kw = measure_kw
        self.keep_onnx = keep_onnx
        self.canaries = canaries or {}
        self.canary_kw = canary_kw or {}
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

    def _measure(self, data: bytes, batch: int, task: Task, res: Result, kw: dict[str, Any]) -> Result:
        try:
            m = self.backend.measure(data, self.platform, batch, name=task.key,
                                     **{**kw, **({"keep_optimized": True} if task.keep_optimized else {})})
        except MeasurementError as e:
            res.error = f"{e.stage}: {e.reason}"
            return res
        res.timings["session"], res.timings["measure"] = m.session_s, m.measure_s
        prof = m.node_profile
        if prof is not None and prof.optimized_onnx is not None:
            from archcast.frontends.onnx import load_onnx

            t0 = time.perf_counter()
            try:
                res.optimized_ir = load_onnx(prof.optimized_onnx, name=f"{task.key}:optimized").to_json()
            except ArchcastError as e:
                res.optimized_error = f"optimized ir: {e}"[:2000]
            prof.optimized_onnx = None  # the IR is what is kept; the bytes need not travel
            res.timings["optimized_ir"] = time.perf_counter() - t0
        res.status, res.measurement = "ok", m
        return res

    def run(self, task: Task) -> Result:
        from archcast.frontends.onnx import load_onnx, strip_weights
        from archcast.store.store import onnx_key, sample_key

        t0 = time.perf_counter()
        res = Result(task.index, "failed", batch_size=self.batch_size)
        try:
            if task.canary is not None:
                res.batch_size = 1
                return self._measure(self.canaries[task.canary], 1, task, res, {**self.measure_kw, **self.canary_kw})
            if task.fingerprint is not None:  # a later pass: the graph is known, its ONNX cached
                res.fingerprint, res.batch_size = task.fingerprint, self.batch_size or 1
                return self._measure(Path(task.onnx_path).read_bytes(), res.batch_size, task, res, self.measure_kw)
            if task.sample is not None:
                from archcast.zoo import export_sample

                try:
                    data = export_sample(task.sample, batch_size=self.batch_size or 1, weight_free=True)
                except Exception as e:  # noqa: BLE001 - a family's build may raise anything: record it
                    res.stub_key, res.error = sample_key(task.sample), f"export: {first_line(e)}"
                    res.batch_size = self.batch_size or 1
                    return res
                res.timings["export"] = time.perf_counter() - t0
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
            res.timings["ir"] = time.perf_counter() - t1
            if task.sample is not None:
                graph.meta.update(family=task.sample.family, seed=int(task.sample.seed))
                if self.keep_onnx:
                    res.onnx_bytes = data
            else:
                import onnx

                res.onnx_bytes = strip_weights(onnx.load_model_from_string(data)).SerializeToString()
            batch = self.batch_size or int(graph.meta.get("batch_size", 1) or 1)
            res.graph, res.batch_size, res.fingerprint = graph, batch, graph.fingerprint()
            if self._already(res.fingerprint, batch):
                res.status = "duplicate"
                return res
            return self._measure(data, batch, task, res, self.measure_kw)
        finally:
            res.timings["task"] = time.perf_counter() - t0


def _worker_main(wid: int, task_q: Any, result_q: Any, init: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        for mod in init["modules"]:
            importlib.import_module(mod)
        import onnx  # noqa: F401 - warm the imports once per worker
        import onnxruntime  # noqa: F401

        import archcast.frontends.onnx  # noqa: F401
        runner = TaskRunner(init["platform"], init["batch_size"], init["db_url"], init["include_failed"],
                            init["measure_kw"], init.get("keep_onnx", False), init.get("canaries"),
                            init.get("canary_kw"))
    except BaseException as e:  # noqa: BLE001 - report why this worker cannot start, then exit
        result_q.put(("dead", wid, first_line(e)))
        return
    while True:
        task = task_q.get()
        if task is None:
            return
        try:
            result = runner.run(task)
        except Exception as e:  # noqa: BLE001 - keep the worker alive; the task is recorded failed
            result = Result(task.index, "failed", error=f"worker: {first_line(e)}", batch_size=runner.batch_size or 1)
        result_q.put(("result", wid, result))


class Worker:
    """A worker process with its own task queue; ``task`` is what it is working on (or None)."""

    def __init__(self, ctx: Any, wid: int, result_q: Any, init: dict[str, Any]) -> None:
        self.wid = wid
        self.task_q = ctx.SimpleQueue()
        self.proc = ctx.Process(target=_worker_main, args=(wid, self.task_q, result_q, init), daemon=True,
                                name=f"archcast-profile-{wid}")
        self.proc.start()
        self.task: Task | None = None
        self.since = 0.0

    def give(self, task: Task) -> None:
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


class Scheduler:
    """Decides what each worker does next and receives every outcome. This one is a FIFO queue;
    :class:`archcast.collect.passes.PassScheduler` adds canaries, windows and re-measures.

    ``lost`` is called for a task whose worker died or timed out (the result never came).
    """

    def __init__(self, tasks: Iterable[Task], write: Any) -> None:
        self.todo: deque[Task] = deque(tasks)
        self.write = write

    def pending(self) -> bool:
        return bool(self.todo)

    def next_task(self, wid: int) -> Task | None:
        return self.todo.popleft() if self.todo else None

    def done(self, wid: int, task: Task, result: Result) -> None:
        self.write(result)

    def lost(self, wid: int, task: Task, reason: str, elapsed_s: float, batch_size: int) -> None:
        self.write(Result(task.index, "failed", error=reason, batch_size=batch_size, timings={"task": elapsed_s}))

    def worker_started(self, wid: int) -> None:
        """A new worker process exists (e.g. to give it a canary checkpoint first)."""

    def worker_stopped(self, wid: int) -> None:
        """Worker ``wid`` is gone (died, timed out); called before :meth:`lost` of its task."""


def run_pool(scheduler: Scheduler, n_workers: int, init: dict[str, Any], timeout_s: float,
             ctx_method: str = "spawn") -> None:
    """Run ``n_workers`` worker processes until the scheduler has nothing left and no task is in
    flight. A worker that dies or times out is replaced and its task reported ``lost``."""
    ctx = mp.get_context(ctx_method)
    result_q = ctx.Queue()
    pool: dict[int, Worker] = {}
    next_id = 0
    batch = init["batch_size"] or 1

    def start() -> None:
        nonlocal next_id
        pool[next_id] = Worker(ctx, next_id, result_q, init)
        scheduler.worker_started(next_id)
        next_id += 1

    def handle(msg: tuple) -> None:
        kind, wid, payload = msg
        w = pool.get(wid)
        if kind == "dead":
            raise ArchcastError(f"a profiling worker cannot start: {payload}")
        if w is not None and w.task is not None and w.task.index == payload.index:
            task, w.task = w.task, None
            scheduler.done(wid, task, payload)

    def drop(wid: int, reason: str) -> None:
        w = pool.pop(wid)
        task, w.task = w.task, None
        scheduler.worker_stopped(wid)
        if task is not None:
            scheduler.lost(wid, task, reason, time.monotonic() - w.since, batch)

    try:
        for _ in range(max(1, n_workers)):
            start()
        while scheduler.pending() or any(w.task is not None for w in pool.values()):
            for wid, w in list(pool.items()):
                if w.task is None:
                    t = scheduler.next_task(wid)
                    if t is not None:
                        w.give(t)
            if not any(w.task is not None for w in pool.values()):
                if not scheduler.pending():
                    break
                time.sleep(_POLL_S)  # nothing to give now (cannot happen with the schedulers here)
                continue
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
                        drop(wid, f"worker: process died (exit code {w.proc.exitcode}) while measuring")
                    else:
                        pool.pop(wid)
                        scheduler.worker_stopped(wid)
                    start()
                elif time.monotonic() - w.since > timeout_s:
                    w.proc.kill()
                    w.proc.join(5)
                    drop(wid, f"worker: timed out after {timeout_s:g} s")
                    start()
    finally:
        for w in pool.values():
            w.stop(grace_s=0.0 if scheduler.pending() else 3.0)
        result_q.close()
        result_q.cancel_join_thread()


__all__ = ["Result", "Scheduler", "Task", "TaskRunner", "Worker", "first_line", "run_pool"]
