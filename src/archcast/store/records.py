"""Rows as Python values: :class:`MeasurementRecord` (a measurement joined with its graph and
platform), :class:`KernelProfile` (a graph's measured kernels), stub keys of graphs that could not
be read, and UTC time helpers."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from archcast.store.schema import GraphRow, MeasurementRow

if TYPE_CHECKING:
    from archcast.zoo.base import ZooSample


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def sample_key(sample: "ZooSample") -> str:
    """Stub fingerprint for a zoo sample that produced no graph (its export failed)."""
    blob = "\0".join([sample.family, str(sample.seed), str(sample.generator_version), sample.config_json()])
    return "sample-" + hashlib.sha256(blob.encode()).hexdigest()[:24]


def onnx_key(data: bytes) -> str:
    """Stub fingerprint for ONNX bytes that could not be read as a graph."""
    return "onnx-" + hashlib.sha256(data).hexdigest()[:24]


@dataclass
class MeasurementRecord:
    """One measurement joined with its graph and platform (what :meth:`Store.measurements` returns).

    Latencies are milliseconds; ``None`` where not measured (failed rows, imported data sets
    that give one number, which lands in ``latency_ms_median``).
    """

    id: int
    fingerprint: str
    family: str | None
    seed: int | None
    generator_version: str | None
    generator_config: str | None
    name: str
    n_nodes: int | None
    flops: int | None
    params: int | None
    memory_bytes: int | None
    platform_id: str
    platform_name: str
    batch_size: int
    status: str
    error: str | None
    latency_ms_min: float | None
    latency_ms_median: float | None
    latency_ms_mean: float | None
    latency_ms_p90: float | None
    latency_ms_std: float | None
    latency_cv: float | None
    n_runs: int | None
    warmup_runs: int | None
    host: str | None
    source: str
    measured_at: datetime
    is_current: bool
    cpu_ms_min: float | None = None
    cpu_ms_median: float | None = None
    cpu_cv: float | None = None
    pass_id: str | None = None
    speed_index: float | None = None
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["measured_at"] = self.measured_at.isoformat()
        return d


@dataclass(frozen=True)
class KernelTiming:
    """One kernel of a profile: its name (a node of the runtime's optimised graph, as the profiler
    names it), op type, and time in microseconds per run."""

    kernel: str
    op_type: str
    kernel_us: float


@dataclass(frozen=True)
class KernelProfile:
    """The measured kernel profile of a (graph, platform, batch size) (what
    :meth:`Store.kernel_profile` returns).

    ``kernels`` are slowest first; ``kernel_us`` is the data set's per-kernel label statistic (the
    median over passes of the per-pass minimum over profiled runs). ``coverage`` is kernel sum /
    the profiled run (wall), the median over passes; None where unknown. ``pass_id`` is the last
    collection pass combined (``<campaign>/p<k>``), ``n_passes`` how many were; ``source`` is
    ``archcast`` (the pass protocol) or ``dataset`` (``archcast db import-kernels``).
    """

    fingerprint: str
    platform_id: str
    batch_size: int
    kernels: tuple[KernelTiming, ...]
    coverage: float | None
    pass_id: str | None
    n_passes: int | None
    source: str
    measured_at: datetime

    @property
    def kernel_sum_us(self) -> float:
        return float(sum(k.kernel_us for k in self.kernels))

    def times_us(self) -> dict[str, float]:
        """``{kernel name: µs}``."""
        return {k.kernel: k.kernel_us for k in self.kernels}

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "platform_id": self.platform_id, "batch_size": self.batch_size,
                "kernels": [[k.kernel, k.op_type, k.kernel_us] for k in self.kernels],
                "kernel_sum_us": self.kernel_sum_us, "coverage": self.coverage, "pass_id": self.pass_id,
                "n_passes": self.n_passes, "source": self.source, "measured_at": self.measured_at.isoformat()}


RECORD_COLUMNS = tuple(f.name for f in fields(MeasurementRecord))


def parse_time(ts: str) -> datetime:
    if not ts:
        return utcnow()
    t = datetime.fromisoformat(ts)
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def record_of(m: MeasurementRow, g: GraphRow, platform_name: str) -> MeasurementRecord:
    return MeasurementRecord(
        id=m.id, fingerprint=g.fingerprint, family=g.family, seed=g.seed, generator_version=g.generator_version,
        generator_config=g.generator_config, name=g.name, n_nodes=g.n_nodes, flops=g.flops, params=g.params,
        memory_bytes=g.memory_bytes, platform_id=m.platform_id, platform_name=platform_name,
        batch_size=m.batch_size, status=m.status, error=m.error, latency_ms_min=m.latency_ms_min,
        latency_ms_median=m.latency_ms_median, latency_ms_mean=m.latency_ms_mean, latency_ms_p90=m.latency_ms_p90,
        latency_ms_std=m.latency_ms_std, latency_cv=m.latency_cv, n_runs=m.n_runs, warmup_runs=m.warmup_runs,
        host=m.host, source=m.source, measured_at=m.measured_at, is_current=bool(m.is_current),
        cpu_ms_min=m.cpu_ms_min, cpu_ms_median=m.cpu_ms_median, cpu_cv=m.cpu_cv, pass_id=m.pass_id,
        speed_index=m.speed_index, role=m.role,
    )


_GRAPH_FIELDS = ("fingerprint", "family", "seed", "generator_version", "generator_config", "name", "n_nodes", "flops",
                 "params", "memory_bytes")


def record_columns() -> list[Any]:
    """SQL columns labelled as the :class:`MeasurementRecord` fields (graph fields from ``graphs``,
    ``platform_name`` from ``platforms``, the rest from ``measurements``): a query selecting them
    builds records without ORM objects (several times faster for pages of rows)."""
    from archcast.store.schema import PlatformRow

    cols = []
    for f in RECORD_COLUMNS:
        if f == "platform_name":
            cols.append(PlatformRow.__table__.c.name.label(f))
        elif f in _GRAPH_FIELDS:
            cols.append(GraphRow.__table__.c[f].label(f))
        else:
            cols.append(MeasurementRow.__table__.c[f].label(f))
    return cols


def record_of_row(row: Any) -> MeasurementRecord:
    """A :class:`MeasurementRecord` from a row selected with :func:`record_columns`."""
    d = dict(row._mapping)
    d["is_current"] = bool(d["is_current"])
    return MeasurementRecord(**d)


__all__ = ["RECORD_COLUMNS", "KernelProfile", "KernelTiming", "MeasurementRecord", "record_columns", "record_of_row", "finite", "onnx_key", "parse_time", "record_of", "sample_key",
           "utcnow"]
