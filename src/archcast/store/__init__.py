"""Persistent measurements: graphs, platforms and latencies in SQLite (default) or PostgreSQL.

>>> from archcast.store import Store
>>> store = Store("sqlite:///runs.db")          # doctest: +SKIP
"""

from archcast.store.errors import StoreCorruptError, StoreError, StoreInputError, StoreLockedError
from archcast.store.records import KernelProfile, KernelTiming
from archcast.store.store import DB_FILE, ENV_VAR, MeasurementRecord, Store, default_url, onnx_key, sample_key

__all__ = ["DB_FILE", "ENV_VAR", "KernelProfile", "KernelTiming", "MeasurementRecord", "Store", "StoreCorruptError", "StoreError", "StoreInputError",
           "StoreLockedError",
           "default_url", "onnx_key", "sample_key"]
