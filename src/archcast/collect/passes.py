"""The measurement protocol: passes in fresh processes, canary checkpoints, automatic re-measures.

:func:`collect_samples` measures zoo samples as design.md §5 asks, block by block (``block``
models at a time, so that exported rows grow while a long campaign runs):

1. **Passes.** Every model of a block is measured in ``passes`` passes, each by a new pool of
   worker processes, one pass after the other (minutes apart). The first pass exports the model,
   reads its IR, caches its weight-free ONNX, and keeps the runtime's optimised graph; every pass
   records wall and thread CPU time and the kernel profile.
2. **Canaries.** Each worker measures the canary set (:mod:`archcast.collect.canaries`) when it
   starts and after every ``canary_every`` models: a checkpoint. A checkpoint's speed index is the
   geometric mean of canary time / reference time (the campaign's first checkpoint); every row
   stores the index of the checkpoint that opened its window.
3. **Re-measure on drift.** When the checkpoint closing a window differs from the one opening it by
   more than ``drift_threshold``, the window's models are measured again in the same pass (at most
   ``max_remeasures`` times each); the old rows stay as history.
4. **A further pass on disagreement.** After the passes, models whose per-pass values (the label
   statistic, canary-normalised) spread by more than ``disagree_threshold`` get up to
   ``extra_passes`` more passes.
5. **Kernel profiles in the store.** After each label pass of a model its kernel profile (the
   robust combination of its label passes so far, :mod:`archcast.collect.kernel_profiles`)
   replaces the one in the store; the per-pass tables stay in the campaign's ``kernels.jsonl``.
6. **Resumable, nothing lost or doubled.** A (model, pass) with a row in the store is not measured
   again; a worker that dies mid-task is replaced and the task retried once (``retries``) before
   it is recorded failed; everything is written by this process as results arrive.

Pass ids are ``<campaign>/p<k>`` (label passes) and ``<campaign>/retest<k>`` (:func:`retest_pass`).
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archcast.collect.canaries import CANARY_FAMILY, CANARY_NAMES, canary_set
from archcast.collect.journal import Journal
from archcast.collect.kernel_profiles import combine_passes, is_label_pass
from archcast.collect.labels import (
    CANARY,
    LABEL_STATS,
    PassRow,
    SpeedIndex,
    disagreeing,
    pass_values,
)
from archcast.collect.runner import ProfileReport, family_modules
from archcast.collect.workers import Result, Scheduler, Task, TaskRunner, run_pool
from archcast.errors import InvalidInputError
from archcast.profile.backend import get_backend

if TYPE_CHECKING:
    from archcast.profile.platform import Platform
    from archcast.store.store import MeasurementRecord, Store
    from archcast.zoo.base import ZooSample


@dataclass
class Protocol:
    """Settings of a measurement campaign (saved in its ``campaign.json``; see the module docstring)."""

    passes: int = 2  # label passes per model, each in new worker processes
    measure_kw: dict[str, Any] = field(default_factory=lambda: {
        "min_runs": 30, "min_time_s": 0.3, "max_time_s": 3.0, "warmup_runs": 10, "warmup_s": 0.1})
    kernels: bool = True  # kernel profile in every pass, optimised graph in the first
    profile_runs: int = 10  # profiled runs per kernel profile (the kernel time is their median)
    profile_max_s: float = 2.0  # profiled runs stop here once >= 3 (a 2 s model: 3 runs, not 10)
    canaries: tuple[str, ...] = CANARY_NAMES
    canary_kw: dict[str, Any] = field(default_factory=lambda: {
        "min_runs": 20, "min_time_s": 0.15, "warmup_runs": 5, "warmup_s": 0.05})
    canary_every: int = 10  # models per worker between two canary checkpoints (40 could not follow the pilot's machine)
    drift_threshold: float = 0.05  # |index change| across a window that triggers its re-measure
    max_remeasures: int = 1  # drift re-measures per (model, pass)
    label_stat: str = "cpu_ms_min"  # per-pass statistic the label is the median of
    # divide each pass value by the canary speed index at its time before the median over passes.
    # On by default since the v2 evidence: label vs a later retest on the same machine 9.0 % MAPE with
    # it, 17.4 % without; against a retest on another machine 1.8x faster 9.6 % with, 43.6 % without
    # (the 12-model pilot had 9.3 % with, 7.9 % without).
    normalise: bool = True
    disagree_threshold: float = 0.05  # per-pass spread that triggers a further pass
    extra_passes: int = 1
    block: int = 400  # models taken through all passes before the next block
    retries: int = 1  # new attempts for a task whose worker died or timed out

    def __post_init__(self) -> None:
        if self.passes < 1 or self.canary_every < 1 or self.block < 1 or self.profile_runs < 1:
            raise InvalidInputError(f"passes, canary_every, block and profile_runs must be >= 1; got {self.passes}, "
                                    f"{self.canary_every}, {self.block}, {self.profile_runs}")
        if self.label_stat not in LABEL_STATS:
            raise InvalidInputError(f"label_stat {self.label_stat!r}; valid: {', '.join(LABEL_STATS)}")
        for name in self.canaries:
            if name not in CANARY_NAMES:
                raise InvalidInputError(f"canary {name!r}; valid: {', '.join(CANARY_NAMES)}")
        self.canaries = tuple(self.canaries)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["canaries"] = list(self.canaries)
        return d

    def model_kw(self) -> dict[str, Any]:
        kernel_kw = {"profile_nodes": True, "profile_runs": self.profile_runs, "profile_max_s": self.profile_max_s}
        return {**self.measure_kw, **(kernel_kw if self.kernels else {})}


@dataclass
class CollectReport(ProfileReport):
    """A :class:`~archcast.collect.runner.ProfileReport` plus the protocol's counts: rows written
    per pass, canary checkpoints, windows re-measured for drift, models given a further pass,
    worker deaths retried."""

    per_pass: dict[str, int] = field(default_factory=dict)
    checkpoints: int = 0
    drift_windows: int = 0
    remeasured: int = 0
    further_pass: int = 0
    retried: int = 0
    measurements: int = 0  # model rows written (all passes, re-measures included)

    @property
    def rows_per_hour(self) -> float:
        return self.measurements / self.wall_s * 3600.0 if self.wall_s > 0 else 0.0

    def line(self) -> str:
        per_pass = ", ".join(f"{k.rsplit('/', 1)[-1]} {v}" for k, v in self.per_pass.items())
        return (f"collected {self.ok} models ({self.failed} failed, {self.duplicates} duplicate, {self.skipped} done "
                f"before) in {self.wall_s:.0f} s: {self.models_per_hour:.0f} models/hour, {self.measurements} rows "
                f"({per_pass}); "
                f"{self.checkpoints} canary checkpoints, {self.drift_windows} drifting windows re-measured "
                f"({self.remeasured} rows), {self.further_pass} further-pass models, {self.retried} retried")


# ---------------------------------------------------------------------------- scheduling one pass
@dataclass
class _WorkerState:
    canaries: deque = field(default_factory=deque)  # canary tasks still to give
    checkpoint: dict[str, float] = field(default_factory=dict)  # canary -> stat of the open checkpoint
    window: list[Task] = field(default_factory=list)  # model tasks since the last checkpoint
    open_index: float | None = None
    closing: bool = False


class PassScheduler(Scheduler):
    """Hands out one pass's model tasks with canary checkpoints per worker (see the module docstring)."""

    def __init__(self, tasks: Sequence[Task], camp: _Campaign, pass_id: str, report: CollectReport) -> None:
        super().__init__(tasks, write=None)
        self.camp, self.pass_id, self.report = camp, pass_id, report
        self.state: dict[int, _WorkerState] = {}
        self.remeasures: dict[int, int] = {}
        self._next_index = 10 ** 9  # canary task ids, apart from model task ids

    def _checkpoint(self, st: _WorkerState) -> None:
        for name in self.camp.protocol.canaries:
            self._next_index += 1
            st.canaries.append(Task(self._next_index, canary=name, pass_id=self.pass_id))
        st.checkpoint = {}

    def worker_started(self, wid: int) -> None:
        self.state[wid] = st = _WorkerState()
        self._checkpoint(st)

    def worker_stopped(self, wid: int) -> None:
        self.state.pop(wid, None)

    def pending(self) -> bool:
        return bool(self.todo) or any(st.canaries or (st.window and not st.closing) for st in self.state.values())

    def next_task(self, wid: int) -> Task | None:
        st = self.state[wid]
        if not st.canaries and st.window and (len(st.window) >= self.camp.protocol.canary_every or not self.todo):
            st.closing = True
            self._checkpoint(st)
        if st.canaries:
            return st.canaries.popleft()
        if self.todo:
            task = self.todo.popleft()
            st.window.append(task)
            return task
        return None

    def done(self, wid: int, task: Task, result: Result) -> None:
        st = self.state.get(wid)
        if task.canary is not None:
            self.camp.write_canary(task, result, self.pass_id)
            if st is None:
                return
            m = result.measurement
            v = getattr(m, self.camp.protocol.label_stat, None) if m is not None else None
            st.checkpoint[task.canary] = float(v) if v else float("nan")
            if len(st.checkpoint) == len(self.camp.protocol.canaries):
                self._close(st)
            return
        speed = st.open_index if st is not None else None
        self.camp.write_model(task, result, self.pass_id, speed, self.report)

    def _close(self, st: _WorkerState) -> None:
        self.report.checkpoints += 1
        index = self.camp.index_of(st.checkpoint)
        if st.window and st.open_index is not None and math.isfinite(index) and \
                abs(index / st.open_index - 1.0) > self.camp.protocol.drift_threshold:
            again = [self.camp.cached(t) for t in st.window
                     if self.remeasures.get(t.index, 0) < self.camp.protocol.max_remeasures]
            for t in again:
                self.remeasures[t.index] = self.remeasures.get(t.index, 0) + 1
            if again:
                self.report.drift_windows += 1
                self.report.remeasured += len(again)
                self.todo.extendleft(reversed(again))
        st.window, st.closing = [], False
        st.open_index = index if math.isfinite(index) else st.open_index

    def lost(self, wid: int, task: Task, reason: str, elapsed_s: float, batch_size: int) -> None:
        if task.canary is not None:
            return  # the replacement worker opens with a checkpoint of its own
        if task.attempt < self.camp.protocol.retries:
            self.report.retried += 1
            self.todo.appendleft(Task(**{**task.__dict__, "attempt": task.attempt + 1}))
            return
        self.camp.write_model(task, Result(task.index, "failed", error=reason, batch_size=batch_size,
                                           timings={"task": elapsed_s}), self.pass_id, None, self.report)


def _run_inline(scheduler: PassScheduler, runner: TaskRunner) -> None:
    """The pool loop in this process (``workers=0``: tests, debugging)."""
    scheduler.worker_started(0)
    while scheduler.pending():
        task = scheduler.next_task(0)
        if task is None:
            break
        scheduler.done(0, task, runner.run(task))


# ---------------------------------------------------------------------------- the campaign
class _Campaign:
    """State shared by the passes: store, platform, journal, protocol, canary reference, writers."""

    def __init__(self, store: Store, platform: Platform, root: str | Path, protocol: Protocol,
                 batch_size: int, name: str | None) -> None:
        self.store, self.platform, self.protocol, self.batch_size = store, platform, protocol, batch_size
        self.journal = Journal(root)
        settings = self.journal.settings()
        self.name = name or (settings or {}).get("name") or Path(root).resolve().name
        if settings is not None:
            for key, mine in (("platform_id", platform.platform_id), ("batch_size", batch_size), ("name", self.name)):
                if settings.get(key) != mine:
                    raise InvalidInputError(f"campaign {root} has {key} {settings.get(key)!r}, not {mine!r}; "
                                            "use another --campaign directory")
        self.canary_bytes = self._canaries(protocol.canaries)
        self.canary_fp: dict[str, str] = {}
        from archcast.frontends.onnx import load_onnx

        for cname, data in self.canary_bytes.items():
            g = load_onnx(data, name=f"canary/{cname}")
            g.meta["family"] = CANARY_FAMILY
            self.canary_fp[cname] = store.add_graph(g, family=CANARY_FAMILY)
        self.reference: dict[str, float] = dict((settings or {}).get("canary_reference_ms") or {})
        self.settings = {"name": self.name, "platform_id": platform.platform_id, "platform_name": platform.name,
                         "batch_size": batch_size, "protocol": protocol.to_dict(), "canaries": self.canary_fp,
                         "canary_reference_ms": self.reference,
                         "created": (settings or {}).get("created") or datetime.now(UTC).isoformat()}
        self.journal.save_settings(self.settings)
        store.add_platform(platform)
        self.tasks: dict[int, Task] = {}
        self.sample_fp: dict[tuple[str, int, str, str], str] = {}  # samples measured in the first pass
        self._label_kernels: dict[str, dict[str, dict[str, Any]]] | None = None  # fp -> label pass -> journal line

    def _canaries(self, names: Sequence[str]) -> dict[str, bytes]:
        """The canary ONNX of this campaign: built once, then read from the campaign directory, so
        that a code change cannot move the reference in the middle of a campaign."""
        paths = {n: self.journal.root / "onnx" / f"canary-{n}.onnx" for n in names}
        missing = tuple(n for n, p in paths.items() if not p.is_file())
        for n, data in canary_set(missing).items():
            tmp = paths[n].with_name(paths[n].name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, paths[n])
        return {n: p.read_bytes() for n, p in paths.items()}

    def cached(self, task: Task) -> Task:
        """``task`` measuring the cached ONNX of its graph when the graph is known (a re-measure
        needs no export); else ``task`` itself."""
        fp = task.fingerprint or (self.sample_fp.get(_ident(task.sample)) if task.sample is not None else None)
        if fp is None or not self.journal.onnx_path(fp).is_file():
            return task
        return Task(task.index, sample=task.sample, pass_id=task.pass_id, fingerprint=fp,
                    onnx_path=str(self.journal.onnx_path(fp)), attempt=task.attempt)

    def pass_id(self, k: int, kind: str = "p") -> str:
        return f"{self.name}/{kind}{k}"

    def index_of(self, checkpoint: dict[str, float]) -> float:
        """Speed index of a checkpoint against the reference (the first complete checkpoint)."""
        good = {k: v for k, v in checkpoint.items() if v and math.isfinite(v) and v > 0}
        if not self.reference and len(good) == len(checkpoint):
            self.reference = dict(good)
            self.settings["canary_reference_ms"] = self.reference
            self.journal.save_settings(self.settings)
        logs = [math.log(v / self.reference[k]) for k, v in good.items() if k in self.reference]
        return math.exp(sum(logs) / len(logs)) if logs else float("nan")

    def write_canary(self, task: Task, r: Result, pass_id: str) -> None:
        fp = self.canary_fp[task.canary]
        self.store.record(fp, self.platform, r.measurement if r.status == "ok" else (r.error or "failed"),
                          batch_size=1, pass_id=pass_id, role=CANARY)

    def write_model(self, task: Task, r: Result, pass_id: str, speed: float | None, report: CollectReport) -> None:
        from archcast.store.store import sample_key

        j, m = self.journal, r.measurement
        fp = r.fingerprint
        if fp is not None and r.graph is not None:  # first pass: the graph is new here
            ident = _ident(task.sample) if task.sample is not None else None
            owners = {f: i for i, f in self.sample_fp.items()}
            if ident is not None and fp in owners and owners[fp] != ident:
                self.store.add_graph(r.graph, task.sample)
                self.store.add_alias(task.sample, fp)  # another seed built a graph measured here: no row
                report.duplicates += 1
                return
            self.store.add_graph(r.graph, task.sample)
            if r.onnx_bytes is not None:
                j.keep_onnx(fp, r.onnx_bytes)
            if ident is not None:
                self.sample_fp[ident] = fp
        if r.optimized_ir is not None or r.optimized_error is not None:
            j.add_optimized(fp, r.optimized_ir, r.optimized_error)
        line = j.kernels_line(m.node_profile) if m is not None and m.node_profile is not None else None
        if line is not None:
            j.add_kernels(fp, pass_id, line["kernels"], line["run_us"], line["runs"])
        if fp is None:
            fp = r.stub_key or sample_key(task.sample)
            self.store.add_stub(fp, sample=task.sample, name=task.key)
        self.store.record(fp, self.platform, m if r.status == "ok" else (r.error or "failed"),
                          batch_size=r.batch_size or self.batch_size, pass_id=pass_id, speed_index=speed)
        if r.status == "ok" and line is not None and line["kernels"]:
            self.write_kernel_profile(fp, pass_id, line, r.batch_size or self.batch_size)
        report.measurements += 1
        report.per_pass[pass_id] = report.per_pass.get(pass_id, 0) + 1
        if r.status == "failed":
            report.failures.append((task.key, r.error or "failed"))
        if r.status != "duplicate":
            for k, v in r.timings.items():
                report.stage_s[k] = report.stage_s.get(k, 0.0) + v  # sums; made means at the end

    def write_kernel_profile(self, fp: str, pass_id: str, line: dict[str, Any], batch_size: int) -> None:
        """Store ``fp``'s kernel profile over its label passes, now including ``line`` of ``pass_id``
        (retest passes never enter a profile). The journal is read once per campaign run; the lines
        written since are kept here (a re-measure's line replaces the pass's earlier one)."""
        if not is_label_pass(pass_id, self.name):
            return
        if self._label_kernels is None:
            self._label_kernels = {}
            for (f, p), old in self.journal.kernels().items():
                if is_label_pass(p, self.name):
                    self._label_kernels.setdefault(f, {})[p] = old
        mine = self._label_kernels.setdefault(fp, {})
        mine[pass_id] = line
        prof = combine_passes({p: ln["kernels"] for p, ln in mine.items()}, {p: ln.get("run_us") for p, ln in mine.items()})
        if prof is not None:
            self.store.put_kernel_profile(fp, self.platform, batch_size=batch_size, **prof)

    # ------------------------------------------------------------------ rows
    def rows(self) -> list[PassRow]:
        """This campaign's rows (models and canaries, every pass, history included)."""
        prefix = self.name + "/"
        recs = self.store.measurements(self.platform, current_only=False)
        return [row_of(r) for r in recs if r.pass_id and r.pass_id.startswith(prefix)]


def row_of(r: MeasurementRecord) -> PassRow:
    """A store row as a :class:`~archcast.collect.labels.PassRow`."""
    t = r.measured_at.replace(tzinfo=UTC).timestamp()
    return PassRow(row_id=r.id, fingerprint=r.fingerprint, role=r.role or "model", pass_id=r.pass_id or "",
                   status=r.status, measured_at=t, host=r.host or "", latency_ms_min=r.latency_ms_min,
                   latency_ms_median=r.latency_ms_median, latency_cv=r.latency_cv, cpu_ms_min=r.cpu_ms_min,
                   cpu_ms_median=r.cpu_ms_median, cpu_cv=r.cpu_cv, n_runs=r.n_runs, speed_index=r.speed_index)


def _run_pass(camp: _Campaign, tasks: list[Task], pass_id: str, workers: int, timeout_s: float,
              report: CollectReport, modules: list[str], log: Callable[[str], None]) -> None:
    if not tasks:
        return
    t0 = time.perf_counter()
    sched = PassScheduler(tasks, camp, pass_id, report)
    init = {"platform": camp.platform, "batch_size": camp.batch_size, "db_url": None, "include_failed": True,
            "measure_kw": camp.protocol.model_kw(), "modules": modules, "keep_onnx": True,
            "canaries": camp.canary_bytes, "canary_kw": {**camp.protocol.canary_kw, "profile_nodes": False}}
    if workers == 0:
        _run_inline(sched, TaskRunner(init["platform"], init["batch_size"], None, True, init["measure_kw"],
                                      True, init["canaries"], init["canary_kw"]))
    else:
        run_pool(sched, workers, init, timeout_s)
    log(f"{pass_id}: {len(tasks)} models in {time.perf_counter() - t0:.0f} s")


def collect_samples(samples: Sequence[ZooSample], store: Store, platform: Platform, campaign: str | Path, *,
                    protocol: Protocol | None = None, batch_size: int = 1, workers: int = 2, timeout_s: float = 600.0,
                    name: str | None = None, progress: bool = True, retry_failed: bool = False) -> CollectReport:
    """Measure ``samples`` with the protocol (module docstring) into ``store`` and the campaign
    directory ``campaign``. Resumable: call it again with the same arguments after a stop; with
    ``retry_failed`` a model whose last attempt in a pass failed is measured in that pass again
    (the failed row stays as history)."""
    protocol = protocol or Protocol()
    if workers < 0 or batch_size < 1:
        raise InvalidInputError(f"workers must be >= 0 and batch_size >= 1; got {workers}, {batch_size}")
    get_backend(platform.backend).check_available(platform)
    cores = os.cpu_count() or 1
    if workers * platform.threads > cores:
        warnings.warn(f"{workers} workers x {platform.threads} threads exceed {cores} CPU cores: "
                      "measurements will disturb each other", RuntimeWarning, stacklevel=2)
    camp = _Campaign(store, platform, campaign, protocol, batch_size, name)
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if progress else (lambda s: None)
    report = CollectReport(total=len(samples))
    modules = family_modules(samples)
    t_start = time.perf_counter()
    samples = list(dict.fromkeys(samples))
    rows = camp.rows()
    by_sample = camp.sample_fp = _sample_fps(store, platform, camp)
    done = {(r.fingerprint, r.pass_id) for r in rows if r.role != CANARY}
    if retry_failed:  # the latest attempt of a (model, pass) decides
        latest = {(r.fingerprint, r.pass_id): r.status for r in sorted(rows, key=lambda r: r.row_id)
                  if r.role != CANARY}
        done -= {key for key, status in latest.items() if status == "failed"}
    before = sum(1 for s in samples if by_sample.get(_ident(s)) is not None)
    try:
        for b in range(0, len(samples), protocol.block):
            block = samples[b:b + protocol.block]
            fps = {i: by_sample.get(_ident(s)) for i, s in enumerate(block)}
            for k in range(1, protocol.passes + 1):
                pid = camp.pass_id(k)
                tasks = []
                for i, s in enumerate(block):
                    fp = fps[i]
                    if fp is not None and (fp, pid) in done:
                        continue
                    if k == 1 or fp is None:
                        if k > 1:
                            continue  # no graph after the first pass: it failed there
                        tasks.append(Task(len(camp.tasks) + len(tasks), sample=s, pass_id=pid,
                                          keep_optimized=protocol.kernels))
                    elif camp.journal.onnx_path(fp).is_file() and (fp, camp.pass_id(1)) in _ok(rows):
                        tasks.append(Task(len(camp.tasks) + len(tasks), sample=s, pass_id=pid, fingerprint=fp,
                                          onnx_path=str(camp.journal.onnx_path(fp))))
                camp.tasks.update({t.index: t for t in tasks})
                _run_pass(camp, tasks, pid, workers, timeout_s, report, modules, log)
                rows = camp.rows()
                by_sample = camp.sample_fp = _sample_fps(store, platform, camp)
                fps = {i: by_sample.get(_ident(s)) for i, s in enumerate(block)}
                done = {(r.fingerprint, r.pass_id) for r in rows if r.role != CANARY}
            _further_passes(camp, rows, set(fps.values()) - {None}, workers, timeout_s, report, modules, log)
            rows = camp.rows()
    finally:
        report.wall_s = time.perf_counter() - t_start
        _finish(report, camp, samples, before)
        log(report.line())
    return report


def _further_passes(camp: _Campaign, rows: list[PassRow], fps: set[str], workers: int, timeout_s: float,
                    report: CollectReport, modules: list[str], log: Callable[[str], None]) -> None:
    p = camp.protocol
    for extra in range(p.extra_passes):
        label_ids = [camp.pass_id(k) for k in range(1, p.passes + 1 + extra)]
        speed = _speed(rows, p.label_stat) if p.normalise else None
        vals = pass_values([r for r in rows if r.fingerprint in fps or r.role == CANARY], p.label_stat, speed,
                           passes=label_ids)
        pid = camp.pass_id(p.passes + 1 + extra)
        have = {r.fingerprint for r in rows if r.pass_id == pid and r.role != CANARY}
        todo = [fp for fp in disagreeing(vals, p.disagree_threshold)
                if fp not in have and camp.journal.onnx_path(fp).is_file()]
        if not todo:
            return
        report.further_pass += len(todo)
        tasks = [Task(len(camp.tasks) + i, pass_id=pid, fingerprint=fp, onnx_path=str(camp.journal.onnx_path(fp)))
                 for i, fp in enumerate(todo)]
        camp.tasks.update({t.index: t for t in tasks})
        _run_pass(camp, tasks, pid, workers, timeout_s, report, modules, log)
        rows = camp.rows()


def retest_pass(store: Store, platform: Platform, campaign: str | Path, count: int, *, seed: int = 0,
                workers: int = 2, timeout_s: float = 600.0, progress: bool = True) -> CollectReport:
    """A retest: ``count`` random models of the campaign measured once more, in a pass of their own
    (``<campaign>/retest<k>``, k = 1 + the retests before) — the data for the noise floor and the
    ablation. Needs the campaign's ONNX cache."""
    j = Journal(campaign)
    settings = j.settings()
    if settings is None:
        raise InvalidInputError(f"{campaign} is not a campaign directory (no campaign.json); measure with "
                                "archcast profile --passes N --campaign DIR first")
    protocol = Protocol(**{**settings["protocol"], "canaries": tuple(settings["protocol"]["canaries"])})
    camp = _Campaign(store, platform, campaign, protocol, int(settings["batch_size"]), settings["name"])
    rows = camp.rows()
    ok = sorted(fp for fp, pid in _ok(rows) if pid == camp.pass_id(1) and j.onnx_path(fp).is_file())
    if not ok:
        raise InvalidInputError(f"campaign {campaign} has no model measured ok in its first pass")
    k = 1 + len({r.pass_id for r in rows if r.pass_id.startswith(f"{camp.name}/retest")})
    rng = np.random.default_rng(seed)
    picked = [ok[i] for i in sorted(rng.choice(len(ok), size=min(count, len(ok)), replace=False))]
    pid = camp.pass_id(k, "retest")
    report = CollectReport(total=len(picked))
    tasks = [Task(i, pass_id=pid, fingerprint=fp, onnx_path=str(j.onnx_path(fp))) for i, fp in enumerate(picked)]
    camp.tasks.update({t.index: t for t in tasks})
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if progress else (lambda s: None)
    t0 = time.perf_counter()
    try:
        _run_pass(camp, tasks, pid, workers, timeout_s, report, [], log)
    finally:
        report.wall_s = time.perf_counter() - t0
        report.ok = len({r.fingerprint for r in camp.rows() if r.pass_id == pid and r.role != CANARY and r.status == "ok"})
        report.failed = len(report.failures)
        log(report.line())
    return report


# ---------------------------------------------------------------------------- helpers
def _ident(s: ZooSample) -> tuple[str, int, str, str]:
    return (s.family, int(s.seed), str(s.generator_version), s.config_json())


def _ok(rows: Sequence[PassRow]) -> set[tuple[str, str]]:
    return {(r.fingerprint, r.pass_id) for r in rows if r.status == "ok" and r.role != CANARY}


def _sample_fps(store: Store, platform: Platform, camp: _Campaign) -> dict[tuple[str, int, str, str], str]:
    """(family, seed, version, config) -> graph fingerprint of the campaign's measured samples."""
    prefix = camp.name + "/"
    out = {}
    for r in store.measurements(platform, current_only=False):
        if r.pass_id and r.pass_id.startswith(prefix) and r.role != CANARY and r.seed is not None:
            out[(r.family or "", int(r.seed), str(r.generator_version), r.generator_config or "")] = r.fingerprint
    return out


def _stub_failed(camp: _Campaign, s: ZooSample, rows: Sequence[PassRow]) -> bool:
    """Whether sample ``s`` failed before it had a graph (export or IR) in the first pass."""
    from archcast.store.store import sample_key

    key = sample_key(s)
    return any(r.fingerprint == key and r.pass_id == camp.pass_id(1) for r in rows)


def _speed(rows: Sequence[PassRow], stat: str) -> SpeedIndex | None:
    canaries = [r for r in rows if r.role == CANARY]
    try:
        return SpeedIndex(canaries, stat) if canaries else None
    except InvalidInputError:
        return None


def _finish(report: CollectReport, camp: _Campaign, samples: Sequence[ZooSample], before: int) -> None:
    """Counts over this call's samples: ok / failed in the first pass, done before this call."""
    rows = camp.rows()
    first = camp.pass_id(1)
    by = _sample_fps(camp.store, camp.platform, camp)
    status = {r.fingerprint: r.status for r in sorted(rows, key=lambda r: r.row_id) if r.pass_id == first}
    fps = [by.get(_ident(s)) for s in samples]
    report.ok = sum(1 for fp in fps if fp is not None and status.get(fp) == "ok")
    report.failed = sum(1 for fp in fps if fp is not None and status.get(fp) == "failed")
    n = max(1, report.measurements)
    report.stage_s = {k: v / n for k, v in report.stage_s.items()}
    report.skipped = before


__all__ = ["CollectReport", "PassScheduler", "Protocol", "collect_samples", "retest_pass", "row_of"]
