"""What one latency measurement records, and the errors a measurement can end in.

A :class:`Measurement` is backend-independent: every backend (onnxruntime on CPU, torch on CUDA...)
returns one, and the store keeps its fields as columns (units in the names).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

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
    """Mean time of one operator of the runtime's (optimised, possibly fused) graph.

    Attributes:
        node: the runtime's node name (fused nodes get the runtime's new names).
        op_type: the runtime's op type (e.g. ``FusedConv``).
        dur_us: mean duration per inference run, microseconds.
    """

    node: str
    op_type: str
    dur_us: float


@dataclass
class NodeProfile:
    """Per-operator times from the runtime's profiler.

    Attributes:
        nodes: per-node mean times, slowest first.
        runs: profiled inference runs the means are taken over.
        run_us: mean wall time of a whole profiled run, microseconds.
        coverage: sum of node times / ``run_us`` (the rest is framework overhead).
    """

    nodes: list[NodeTime]
    runs: int
    run_us: float

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
        node_profile: per-operator times when requested, else None.
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

    @classmethod
    def from_times(cls, times_ms: Sequence[float], **meta: Any) -> "Measurement":
        """Statistics of ``times_ms`` (one entry per timed run, milliseconds) plus ``meta`` fields."""
        import numpy as np

        t = np.asarray(times_ms, dtype=np.float64)
        if t.size == 0:
            raise ValueError("a measurement needs at least one timed run")
        mean = float(t.mean())
        std = float(t.std(ddof=1)) if t.size > 1 else 0.0
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
