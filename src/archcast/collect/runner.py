"""Profile many models into a :class:`~archcast.store.Store`, resumably, with worker processes.

One measurement per model; the protocol with passes and canaries is :mod:`archcast.collect.passes`.

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

import os
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archcast.collect.workers import Result, Scheduler, Task, TaskRunner, run_pool
from archcast.errors import InvalidInputError
from archcast.profile.backend import get_backend
from archcast.profile.platform import Platform

if TYPE_CHECKING:
    from archcast.store.store import Store
    from archcast.zoo.base import ZooSample

_BUILTIN_ZOO_PREFIX = "archcast.zoo."


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


# ---------------------------------------------------------------------------- parent side
def family_modules(samples: Iterable[ZooSample]) -> list[str]:
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


class Writer:
    """Writes results to the store and keeps the report (and the progress bar)."""

    def __init__(self, store: Store, platform: Platform, tasks: dict[int, Task], report: ProfileReport,
                 bar: Any) -> None:
        self.store, self.platform, self.tasks, self.report, self.bar = store, platform, tasks, report, bar
        self._stage_sum: dict[str, float] = {}
        self._stage_n: dict[str, int] = {}

    def write(self, r: Result) -> None:
        task = self.tasks[r.index]
        if r.status == "duplicate":
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
        self.count(r)

    def count(self, r: Result) -> None:
        """Add ``r`` to the report (status counts, stage means) and the progress bar."""
        task = self.tasks[r.index]
        if r.status == "ok":
            self.report.ok += 1
        elif r.status == "failed":
            self.report.failed += 1
            self.report.failures.append((task.key, r.error or "failed"))
        elif r.status == "duplicate":
            self.report.duplicates += 1
        if r.status != "duplicate":
            for k, v in r.timings.items():
                self._stage_sum[k] = self._stage_sum.get(k, 0.0) + v
                self._stage_n[k] = self._stage_n.get(k, 0) + 1
            self.report.stage_s = {k: v / self._stage_n[k] for k, v in self._stage_sum.items()}
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(ok=self.report.ok, failed=self.report.failed, refresh=False)


def _run(tasks: list[Task], skipped: int, store: Store, platform: Platform, batch_size: int | None,
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
    writer = Writer(store, platform, {t.index: t for t in tasks}, report, bar)
    db_url = None if store.path is None and store.url.get_backend_name() == "sqlite" else \
        store.url.render_as_string(hide_password=False)
    if remeasure:
        db_url = None  # workers skip their "already measured" check: every task is measured again
    try:
        if workers == 0:
            runner = TaskRunner(platform, batch_size, db_url, not retry_failed, measure_kw)
            for t in tasks:
                writer.write(runner.run(t))
        elif tasks:
            run_pool(Scheduler(tasks, writer.write), workers, {
                "platform": platform, "batch_size": batch_size, "db_url": db_url,
                "include_failed": not retry_failed, "measure_kw": measure_kw, "modules": modules,
            }, timeout_s)
    finally:
        report.wall_s = time.perf_counter() - t_start
        if bar is not None:
            bar.close()
            print(report.line(), file=sys.stderr)
    return report


# ---------------------------------------------------------------------------- public API
def profile_samples(
    samples: Sequence[ZooSample],
    store: Store,
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
        tasks.append(Task(len(tasks), sample=s))
    modules = list(worker_modules) + [m for m in family_modules(samples) if m not in worker_modules]
    return _run(tasks, len(samples) - len(tasks), store, platform, batch_size, workers, progress, retry_failed,
                timeout_s, dict(measure_kw or {}), modules, remeasure)


def profile_onnx_files(
    paths: Sequence[str | Path],
    store: Store,
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
    tasks = [Task(i, onnx_path=f) for i, f in enumerate(dict.fromkeys(files))]
    return _run(tasks, 0, store, platform, None, workers, progress, retry_failed, timeout_s,
                dict(measure_kw or {}), [])


__all__ = ["ProfileReport", "Writer", "family_modules", "profile_onnx_files", "profile_samples"]
