"""Settings of ``archcast serve``: flags override environment variables, which override defaults.

=============================  =====================================  ==========================
setting                        environment variable                   default
=============================  =====================================  ==========================
``host``                       ``ARCHCAST_SERVE_HOST``                ``127.0.0.1``
``port``                       ``ARCHCAST_SERVE_PORT``                ``8000``
``db`` (store URL or file)     ``ARCHCAST_DB``                        the per-user SQLite store
``read_access``                ``ARCHCAST_SERVE_READ``                ``open`` (or ``token``)
``max_upload_mb``              ``ARCHCAST_SERVE_MAX_UPLOAD_MB``       ``200``
``processes``                  ``ARCHCAST_SERVE_PROCESSES``           ``1``
``threads`` (per process)      ``ARCHCAST_SERVE_THREADS``             cores / processes
``cache_size`` (graphs)        ``ARCHCAST_SERVE_CACHE``               ``256``
``measured_ttl_s``             ``ARCHCAST_SERVE_MEASURED_TTL``        ``1.0`` (store lookups kept)
``summary_ttl_s``              ``ARCHCAST_SERVE_SUMMARY_TTL``         ``5.0`` (store counts kept)
=============================  =====================================  ==========================

Writes (``POST /v1/measurements``) always need a token with the ``write`` scope; reads need a
token (either scope) only when ``read_access`` is ``token``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

from archcast.errors import InvalidInputError

READ_ACCESS = ("open", "token")
ENV = {"host": "ARCHCAST_SERVE_HOST", "port": "ARCHCAST_SERVE_PORT", "db": "ARCHCAST_DB",
       "read_access": "ARCHCAST_SERVE_READ", "max_upload_mb": "ARCHCAST_SERVE_MAX_UPLOAD_MB",
       "processes": "ARCHCAST_SERVE_PROCESSES", "threads": "ARCHCAST_SERVE_THREADS",
       "cache_size": "ARCHCAST_SERVE_CACHE", "measured_ttl_s": "ARCHCAST_SERVE_MEASURED_TTL",
       "summary_ttl_s": "ARCHCAST_SERVE_SUMMARY_TTL"}


def machine_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeSettings:
    """What ``archcast serve`` runs with (see the module docstring); ``threads=0`` means cores / processes."""

    host: str = "127.0.0.1"
    port: int = 8000
    db: str | None = None
    read_access: str = "open"
    max_upload_mb: float = 200.0
    processes: int = 1
    threads: int = 0
    cache_size: int = 256
    measured_ttl_s: float = 1.0
    summary_ttl_s: float = 5.0

    def __post_init__(self) -> None:
        if self.read_access not in READ_ACCESS:
            raise InvalidInputError(f"read access {self.read_access!r} is not valid; valid: {', '.join(READ_ACCESS)}")
        if not 0 < self.port < 65536:
            raise InvalidInputError(f"port must be 1..65535; got {self.port}")
        if not self.max_upload_mb > 0:
            raise InvalidInputError(f"max upload must be > 0 MB; got {self.max_upload_mb}")
        for name in ("processes", "cache_size"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name in ("measured_ttl_s", "summary_ttl_s"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must be >= 0 s; got {getattr(self, name)}")
        if self.threads < 0:
            raise InvalidInputError(f"threads must be >= 0 (0: cores / processes); got {self.threads}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def prediction_threads(self) -> int:
        """Prediction worker threads of one process: the machine's cores shared among processes."""
        return self.threads or max(1, machine_cores() // self.processes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "ServeSettings":
        """Defaults, then ``environ`` (default ``os.environ``), then ``overrides`` that are not None."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV[f.name])
            if raw not in (None, ""):
                kind = {"port": int, "processes": int, "threads": int, "cache_size": int,
                        "max_upload_mb": float, "measured_ttl_s": float, "summary_ttl_s": float}.get(f.name, str)
                try:
                    values[f.name] = kind(raw)
                except ValueError:
                    raise InvalidInputError(f"{ENV[f.name]}={raw!r} is not a valid {kind.__name__}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (for worker processes)."""
        return {ENV[f.name]: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}


__all__ = ["ENV", "READ_ACCESS", "ServeSettings", "machine_cores"]
