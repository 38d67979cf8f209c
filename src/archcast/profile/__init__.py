"""Measure real latency: platforms, profiling backends, and the batch runner that fills the store.

Importing this package is cheap (no onnxruntime, no torch); :mod:`archcast.profile.ort` loads
onnxruntime, :mod:`archcast.profile.runner` starts worker processes.
"""

from archcast.profile.measurement import (
    BackendUnavailableError,
    Measurement,
    MeasurementError,
    NodeProfile,
    NodeTime,
)
from archcast.profile.platform import BACKENDS, Backend, Platform, default_platform, get_backend

__all__ = ["BACKENDS", "Backend", "BackendUnavailableError", "Measurement", "MeasurementError", "NodeProfile",
           "NodeTime", "Platform", "default_platform", "get_backend"]
