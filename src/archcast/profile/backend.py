"""Profiling backends: what measures an ONNX model on one kind of platform.

Backends are registered in :data:`BACKENDS` by exact name and share one interface,
:meth:`Backend.measure`. Importing this module imports neither onnxruntime nor torch: the
onnxruntime backend loads :mod:`archcast.profile.ort` only when it measures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from archcast.profile.measurement import BackendUnavailableError, Measurement
from archcast.registry import Registry

if TYPE_CHECKING:
    from archcast.profile.platform import Platform


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
        from archcast.profile.ort import (
            measure_onnx,  # lazy: onnxruntime loads only when measuring
        )

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


__all__ = ["BACKENDS", "Backend", "OnnxRuntimeCpuBackend", "TorchCudaBackend", "get_backend"]
