"""Platforms: what a latency was measured on.

A :class:`Platform` names every setting that changes a latency: backend, device, runtime and its
version, threads, precision, graph-optimisation level. Its :attr:`Platform.platform_id` is a short
stable hash of those fields, so two numbers are comparable exactly when their ids are equal.

A platform's backend must be registered in :data:`archcast.profile.backend.BACKENDS`. Importing
this module imports neither onnxruntime nor torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from archcast.errors import InvalidInputError
from archcast.profile.backend import BACKENDS
from archcast.profile.machine import cpu_model

GRAPH_OPT_LEVELS = ("all", "extended", "basic", "disable")
PRECISIONS = ("fp32", "fp16")
_ID_FIELDS = ("name", "backend", "device", "runtime", "runtime_version", "threads", "precision", "graph_opt_level")


@dataclass(frozen=True)
class Platform:
    """Everything that makes a latency number meaningful.

    Attributes:
        name: a human label, e.g. ``ort-cpu-1t`` (part of the id: rename = new platform).
        backend: a name registered in :data:`BACKENDS` (``onnxruntime-cpu``...), or ``imported``
            for numbers read from another data set.
        device: CPU or GPU model.
        runtime: the inference runtime (``onnxruntime``, ``torch``...).
        runtime_version: its version string.
        threads: intra-op threads (>= 1).
        precision: one of :data:`PRECISIONS`.
        graph_opt_level: one of :data:`GRAPH_OPT_LEVELS`.
    """

    name: str
    backend: str = "onnxruntime-cpu"
    device: str = ""
    runtime: str = "onnxruntime"
    runtime_version: str = ""
    threads: int = 1
    precision: str = "fp32"
    graph_opt_level: str = "all"

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise InvalidInputError(f"platform name must be non-empty without whitespace; got {self.name!r}")
        if self.backend != "imported" and self.backend not in BACKENDS:
            raise InvalidInputError(
                f"platform backend {self.backend!r} is not registered; valid: {', '.join(BACKENDS.names())}, imported"
            )
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise InvalidInputError(f"platform threads must be an integer >= 1; got {self.threads!r}")
        if self.precision not in PRECISIONS:
            raise InvalidInputError(f"platform precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.graph_opt_level not in GRAPH_OPT_LEVELS:
            raise InvalidInputError(
                f"graph_opt_level {self.graph_opt_level!r}; valid: {', '.join(GRAPH_OPT_LEVELS)}"
            )

    @property
    def platform_id(self) -> str:
        """16 hex digits of SHA-256 over the fields (stable across Python processes and versions)."""
        blob = json.dumps({k: getattr(self, k) for k in _ID_FIELDS}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "platform_id": self.platform_id}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Platform:
        return cls(**{k: d[k] for k in _ID_FIELDS if k in d})


def default_platform(threads: int = 1, graph_opt_level: str = "all") -> Platform:
    """This machine's onnxruntime CPU platform, named ``ort-cpu-<threads>t`` (``-<level>`` unless
    the optimisation level is ``all``). One thread is the stable setting (docs/design.md §5)."""
    import onnxruntime

    name = f"ort-cpu-{threads}t" + ("" if graph_opt_level == "all" else f"-{graph_opt_level}")
    return Platform(name=name, backend="onnxruntime-cpu", device=cpu_model(), runtime="onnxruntime",
                    runtime_version=onnxruntime.__version__, threads=threads, precision="fp32",
                    graph_opt_level=graph_opt_level)


__all__ = ["GRAPH_OPT_LEVELS", "PRECISIONS", "Platform", "default_platform"]
