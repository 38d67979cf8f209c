"""Platforms (what a latency was measured on) and the profiling backends that measure them.

A :class:`Platform` names every setting that changes a latency: backend, device, runtime and its
version, threads, precision, graph-optimisation level. Its :attr:`Platform.platform_id` is a short
stable hash of those fields, so two numbers are comparable exactly when their ids are equal.

Backends are registered in :data:`BACKENDS` by exact name and share one interface,
:meth:`Backend.measure`. Importing this module imports neither onnxruntime nor torch.
"""

from __future__ import annotations

import hashlib
import json
import platform as _pyplatform
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, ClassVar

from archcast.errors import InvalidInputError
from archcast.profile.measurement import BackendUnavailableError, Measurement
from archcast.registry import Registry

GRAPH_OPT_LEVELS = ("all", "extended", "basic", "disable")
PRECISIONS = ("fp32", "fp16")
_ID_FIELDS = ("name", "backend", "device", "runtime", "runtime_version", "threads", "precision", "graph_opt_level")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model (``model name`` in /proc/cpuinfo), else ``platform.processor()``/machine."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return _pyplatform.processor() or _pyplatform.machine() or "unknown-cpu"


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
    def from_dict(cls, d: dict[str, Any]) -> "Platform":
        return cls(**{k: d[k] for k in _ID_FIELDS if k in d})


def default_platform(threads: int = 1, graph_opt_level: str = "all") -> Platform:
    """This machine's onnxruntime CPU platform, named ``ort-cpu-<threads>t`` (``-<level>`` unless
    the optimisation level is ``all``). One thread is the stable setting (design.md §5)."""
    import onnxruntime

    name = f"ort-cpu-{threads}t" + ("" if graph_opt_level == "all" else f"-{graph_opt_level}")
    return Platform(name=name, backend="onnxruntime-cpu", device=cpu_model(), runtime="onnxruntime",
                    runtime_version=onnxruntime.__version__, threads=threads, precision="fp32",
                    graph_opt_level=graph_opt_level)


# ---------------------------------------------------------------------------- backends
class Backend(ABC):
    """Measures an ONNX model on one kind of platform. Subclasses set ``name`` and implement
    :meth:`measure`; :meth:`check_available` raises :class:`BackendUnavailableError` with the fix."""

    name: ClassVar[str] = ""

    def check_available(self, platform: Platform | None = None) -> None:
        """Raise :class:`BackendUnavailableError` when this machine cannot run the backend, and
        ``InvalidInputError`` when ``platform`` does not describe this machine."""

    @abstractmethod
    def measure(self, onnx_bytes: bytes, platform: Platform, batch_size: int | None = None,
                **options: Any) -> Measurement:
        """Latency of ``onnx_bytes`` on ``platform``. Raises ``MeasurementError`` when the model
        cannot be loaded or run (the reason is kept), ``BackendUnavailableError`` when the
        backend cannot run here at all."""


BACKENDS: Registry[type[Backend]] = Registry("profiling backend")


@BACKENDS.register("onnxruntime-cpu")
class OnnxRuntimeCpuBackend(Backend):
    """onnxruntime, CPU execution provider (see :func:`archcast.profile.ort.measure_onnx`)."""

    name = "onnxruntime-cpu"

    def measure(self, onnx_bytes: bytes, platform: Platform, batch_size: int | None = None,
                **options: Any) -> Measurement:
        from archcast.profile.ort import measure_onnx  # lazy: onnxruntime loads only when measuring

        return measure_onnx(onnx_bytes, platform, batch_size=batch_size, **options)

    def check_available(self, platform: Platform | None = None) -> None:
        from archcast.profile.ort import check_platform

        if platform is not None:
            check_platform(platform)


@BACKENDS.register("torch-cuda")
class TorchCudaBackend(Backend):
    """PyTorch on a CUDA GPU. Registered so platforms can name it; measuring ONNX bytes with it is
    not implemented yet (it needs an ONNX -> torch path or the zoo's torch modules)."""

    name = "torch-cuda"

    def check_available(self, platform: Platform | None = None) -> None:
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                "profiling backend 'torch-cuda' needs a CUDA GPU, but torch.cuda.is_available() is False "
                f"(torch {torch.__version__}); use backend 'onnxruntime-cpu' on this machine"
            )

    def measure(self, onnx_bytes: bytes, platform: Platform, batch_size: int | None = None,
                **options: Any) -> Measurement:
        self.check_available()
        raise BackendUnavailableError(
            "profiling backend 'torch-cuda' cannot measure ONNX models yet; valid backends that can: onnxruntime-cpu"
        )


def get_backend(name: str) -> Backend:
    """An instance of the backend registered as ``name`` (the error lists the valid names)."""
    return BACKENDS.get(name)()


__all__ = ["BACKENDS", "GRAPH_OPT_LEVELS", "PRECISIONS", "Backend", "OnnxRuntimeCpuBackend", "Platform",
           "TorchCudaBackend", "cpu_model", "default_platform", "get_backend"]
