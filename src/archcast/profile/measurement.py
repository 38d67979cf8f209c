"""What one latency measurement records, and the errors a measurement can end in.

A :class:`Measurement` is backend-independent: every backend (onnxruntime on CPU, torch on CUDA...)
returns one, and the store keeps its fields as columns (units in the names).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from archcast.errors import ArchcastError

MEASURE_STAGES = ("load", "inputs", "run", "profile")


class MeasurementError(ArchcastError):
    """A model could not be measured: the runtime cannot load it, build its inputs, or run it.

    Attributes:
        stage: where it failed, one of :data:`MEASURE_STAGES`.
        reason: the runtime's own message (first line), kept for the store's ``error`` column.
    """

    def __init__(self, stage: str, reason: str, *, model: str = "model") -> None:
        self.stage = stage
        self.reason = reason
        super().__init__(f"{model}: the runtime cannot {_VERB.get(stage, stage)} it: {reason}")


_VERB = {"load": "load", "inputs": "build inputs for", "run": "run", "profile": "profile"}


class BackendUnavailableError(ArchcastError):
    """The requested profiling backend cannot run on this machine (no GPU, missing runtime...)."""


@dataclass(frozen=True)
class NodeTime:
    """Time of one kernel (a node of the runtime's optimised, possibly fused graph).

    Attributes:
        node: the runtime's node name (fused nodes get the runtime's new names); it names a node
            of :attr:`NodeProfile.optimized_onnx`.
        op_type: the runtime's op type (e.g. ``FusedConv``).
        dur_us: median over the profiled runs of the kernel's time in one run, microseconds (the
            median, not the mean: one preempted run must not move a kernel label).
        dur_us_min: the minimum over the profiled runs, microseconds.
    """

    node: str
    op_type: str
    dur_us: float
    dur_us_min: float | None = None  # minimum over the profiled runs (time-sharing only ever adds)


@dataclass
class NodeProfile:
    """Per-kernel times from the runtime's profiler, and the graph the runtime executed.

    Attributes:
        nodes: per-kernel times (see :class:`NodeTime`), slowest first.
        runs: profiled inference runs the statistics are taken over.
        run_us: median wall time of a whole profiled run, microseconds.
        coverage: sum of kernel times / ``run_us`` (the rest is framework overhead).
        optimized_onnx: the runtime's optimised graph as weight-free ONNX with every tensor's
            shape in ``value_info`` (shape-setting initializers keep their values), or None
            when not requested.
    """

    nodes: list[NodeTime]
    runs: int
    run_us: float
    optimized_onnx: bytes | None = field(default=None, repr=False)

    @property
    def coverage(self) -> float:
        return sum(n.dur_us for n in self.nodes) / self.run_us if self.run_us > 0 else float("nan")

    def by_op_type(self) -> dict[str, float]:
        """Mean microseconds per run summed by op type, slowest first."""
        out: dict[str, float] = {}
        for n in self.nodes:
            out[n.op_type] = out.get(n.op_type, 0.0) + n.dur_us
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def summary(self, top: int = 10) -> dict[str, Any]:
        """A compact JSON-able summary: per-op-type totals, top nodes, coverage."""
        return {
            "runs": self.runs,
            "run_us": round(self.run_us, 3),
            "coverage": round(self.coverage, 4) if math.isfinite(self.coverage) else None,
            "by_op_type_us": {k: round(v, 3) for k, v in self.by_op_type().items()},
            "top_nodes": [[n.node, n.op_type, round(n.dur_us, 3)] for n in self.nodes[:top]],
        }


@dataclass
class Measurement:
    """Latency statistics of one model on one platform at one batch size.

    Attributes:
        latency_ms_min / _median / _mean / _p90 / _std: over the timed runs, milliseconds.
        latency_cv: coefficient of variation (std / mean), unitless.
        n_runs: timed runs.
        warmup_runs: untimed runs before timing.
        batch_size: the batch size the model was run at.
        input_shapes: graph input name -> shape actually fed.
        timestamp: when timing finished, ISO 8601 UTC.
        host: the machine's host name.
        session_s: seconds to create the runtime session (not part of the latency).
        measure_s: seconds spent warming up and timing.
        node_profile: per-kernel times when requested, else None.
        cpu_ms_min / _median / _mean, cpu_cv: the measuring thread's CPU time per run
            (``time.thread_time_ns``), milliseconds, for 1-thread platforms (the runtime then runs
            every kernel on the calling thread); None otherwise. Time-sharing with other
            processes inflates wall time but not this.
    """

    latency_ms_min: float
    latency_ms_median: float
    latency_ms_mean: float
    latency_ms_p90: float
    latency_ms_std: float
    latency_cv: float
    n_runs: int
    warmup_runs: int
    batch_size: int
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    timestamp: str = ""
    host: str = ""
    session_s: float = 0.0
    measure_s: float = 0.0
    node_profile: NodeProfile | None = None
    cpu_ms_min: float | None = None
    cpu_ms_median: float | None = None
    cpu_ms_mean: float | None = None
    cpu_cv: float | None = None

    @classmethod
    def from_times(cls, times_ms: Sequence[float], cpu_times_ms: Sequence[float] | None = None,
                   **meta: Any) -> Measurement:
        """Statistics of ``times_ms`` (one entry per timed run, milliseconds), of the matching
        thread CPU times ``cpu_times_ms`` when given, plus ``meta`` fields."""
        import numpy as np

        t = np.asarray(times_ms, dtype=np.float64)
        if t.size == 0:
            raise ValueError("a measurement needs at least one timed run")
        mean = float(t.mean())
        std = float(t.std(ddof=1)) if t.size > 1 else 0.0
        if cpu_times_ms is not None:
            c = np.asarray(cpu_times_ms, dtype=np.float64)
            if c.shape != t.shape:
                raise ValueError(f"cpu_times_ms has {c.size} entries for {t.size} timed runs")
            c_mean = float(c.mean())
            c_std = float(c.std(ddof=1)) if c.size > 1 else 0.0
            meta.update(cpu_ms_min=float(c.min()), cpu_ms_median=float(np.median(c)), cpu_ms_mean=c_mean,
                        cpu_cv=c_std / c_mean if c_mean > 0 else 0.0)
        return cls(
            latency_ms_min=float(t.min()),
            latency_ms_median=float(np.median(t)),
            latency_ms_mean=mean,
            latency_ms_p90=float(np.percentile(t, 90)),
            latency_ms_std=std,
            latency_cv=std / mean if mean > 0 else 0.0,
            n_runs=int(t.size),
            **meta,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["node_profile"] = self.node_profile.summary() if self.node_profile else None
        return d


__all__ = ["MEASURE_STAGES", "BackendUnavailableError", "Measurement", "MeasurementError", "NodeProfile", "NodeTime"]
