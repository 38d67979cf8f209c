"""Measure real latency of one model on one platform: platforms, backends, kernel profiles.

Importing this package is cheap (no onnxruntime, no torch); :mod:`archcast.profile.ort` loads
onnxruntime. Measuring many models into the store is :mod:`archcast.collect`.
"""

from archcast.profile.backend import BACKENDS, Backend, get_backend
from archcast.profile.measurement import (
    BackendUnavailableError,
    Measurement,
    MeasurementError,
    NodeProfile,
    NodeTime,
)
from archcast.profile.platform import Platform, default_platform

__all__ = ["BACKENDS", "Backend", "BackendUnavailableError", "Measurement", "MeasurementError", "NodeProfile",
           "NodeTime", "Platform", "default_platform", "get_backend"]
