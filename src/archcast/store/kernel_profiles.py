"""Kernel profiles in the store: per (graph, platform, batch size) the measured time of every kernel.

:class:`KernelProfileMethods` is mixed into :class:`archcast.store.Store` (``put_kernel_profile``,
``put_kernel_profiles``, ``kernel_profile``, ``known_graphs``). One profile per key: a new profile
replaces the old one and its kernels in one transaction, and an equal one writes nothing. Profiles
keep no history because they are derived: the per-pass kernel tables stay in the campaign directory
and the data set (``kernels.csv.xz``). What the numbers are: :mod:`archcast.store.schema`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from archcast.errors import InvalidInputError
from archcast.profile.platform import Platform
from archcast.store.errors import StoreInputError
from archcast.store.records import KernelProfile, KernelTiming, utcnow
from archcast.store.schema import GraphRow, KernelProfileRow, KernelTimeRow, PlatformRow


class KernelProfileMethods:
    """The kernel profile methods of a Store (use its ``_write``/``_tx``/``_guard`` and row helpers)."""

    location: str
    dialect: str
    _engine: Any
    _tx: Any
    _write: Any
    _guard: Any
    _graph_row: Any
    _platform_row: Any
    _pushed_graph_values: Any

    def put_kernel_profile(self, fingerprint: str, platform: Platform | str, kernels: Sequence[Any], *,
                           batch_size: int = 1, coverage: float | None = None, pass_id: str | None = None,
                           n_passes: int | None = None, source: str = "archcast") -> str:
        """Store the kernel profile of (graph, platform, batch size), replacing the one stored.

        ``kernels``: ``(kernel name, op type, µs per run)`` triples or :class:`KernelTiming`, names
        unique (stored slowest first). ``coverage``: kernel sum / the profiled run (wall).
        ``platform``: a Platform (added if new) or a stored ``platform_id``; the graph must be
        stored. Returns ``"added"``, ``"replaced"`` or ``"unchanged"`` (an equal profile writes
        nothing).

        Raises:
            InvalidInputError: a bad value (names the kernel and the value).
            StoreInputError: the store has no such graph or platform.
        """
        item = {"fingerprint": fingerprint, "kernels": kernels, "coverage": coverage, "pass_id": pass_id,
                "n_passes": n_passes}
        return self.put_kernel_profiles(platform, [item], batch_size=batch_size, source=source)[0]

    def put_kernel_profiles(self, platform: Platform | str, items: Sequence[Mapping[str, Any]], *,
                            batch_size: int = 1, source: str = "archcast") -> list[str]:
        """:meth:`put_kernel_profile` for many graphs of one platform in one transaction.

        Each item: ``fingerprint``, ``kernels``, optional ``coverage``, ``pass_id``, ``n_passes``,
        and ``graph`` (a NetGraph, added when the store lacks it) with optional ``provenance``
        (``family``, ``seed``, ``generator_version``, ``generator_config``). Returns the status of
        each item (see :meth:`put_kernel_profile`). Every item is validated before anything is written.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"kernel profile: batch_size must be an integer >= 1; got {batch_size!r}")
        if not isinstance(source, str) or not 0 < len(source) <= 32:
            raise InvalidInputError(f"kernel profile: source must be a string of 1 to 32 characters; got {source!r}")
        prepared = [_profile_values(item) for item in items]
        pid = platform.platform_id if isinstance(platform, Platform) else str(platform)

        def fn(s: Session) -> list[str]:
            if isinstance(platform, Platform):
                self._platform_row(s, platform)
            elif s.get(PlatformRow, pid) is None:
                raise StoreInputError(f"database {self.location} has no platform {pid!r}; add_platform first")
            out = []
            for item, (meta, rows) in zip(items, prepared):
                fp = meta["graph_fingerprint"]
                if item.get("graph") is not None:
                    self._graph_row(s, fp, **self._pushed_graph_values(item["graph"], item.get("provenance")))
                elif s.get(GraphRow, fp) is None:
                    raise StoreInputError(f"database {self.location} has no graph {fp!r}; add_graph first")
                out.append(self._put_profile(s, pid, int(batch_size), source, meta, rows))
            return out

        return self._write(f"storing {len(prepared)} kernel profiles", fn)

    def _put_profile(self, s: Session, pid: str, batch_size: int, source: str, meta: dict[str, Any],
                     rows: list[tuple[str, str, float]]) -> str:
        fp = meta["graph_fingerprint"]
        if self.dialect == "postgresql":  # writers of one profile queue here, not at the unique index
            key = hashlib.sha256(f"kernels\0{fp}\0{pid}\0{batch_size}".encode()).digest()
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(key[:8], "big", signed=True)})
        values = {**meta, "platform_id": pid, "batch_size": batch_size, "source": source, "n_kernels": len(rows),
                  "kernel_sum_us": float(sum(r[2] for r in rows))}
        old = s.scalars(select(KernelProfileRow).where(
            KernelProfileRow.graph_fingerprint == fp, KernelProfileRow.platform_id == pid,
            KernelProfileRow.batch_size == batch_size)).first()
        status = "added"
        if old is not None:
            stored = [tuple(r) for r in s.execute(
                select(KernelTimeRow.kernel, KernelTimeRow.op_type, KernelTimeRow.kernel_us)
                .where(KernelTimeRow.profile_id == old.id).order_by(KernelTimeRow.position))]
            if stored == rows and all(getattr(old, k) == v for k, v in values.items() if k != "kernel_sum_us"):
                return "unchanged"
            s.execute(delete(KernelTimeRow).where(KernelTimeRow.profile_id == old.id))
            for k, v in values.items():
                setattr(old, k, v)
            old.measured_at = utcnow()
            row, status = old, "replaced"
        else:
            row = KernelProfileRow(measured_at=utcnow(), **values)
            s.add(row)
        s.flush()
        s.execute(insert(KernelTimeRow), [{"profile_id": row.id, "position": i, "kernel": k, "op_type": o,
                                           "kernel_us": us} for i, (k, o, us) in enumerate(rows)])
        return status

    def kernel_profile(self, fingerprint: str, platform: Platform | str, batch_size: int = 1) -> KernelProfile | None:
        """The stored kernel profile of (graph, platform, batch size), or None. ``platform`` is a
        Platform or a ``platform_id``. Two index lookups, no ORM objects (``archcast predict``)."""
        pid = platform.platform_id if isinstance(platform, Platform) else str(platform)
        p, k = KernelProfileRow.__table__.c, KernelTimeRow.__table__.c
        q = select(p.id, p.coverage, p.pass_id, p.n_passes, p.source, p.measured_at).where(
            p.graph_fingerprint == fingerprint, p.platform_id == pid, p.batch_size == int(batch_size)).limit(1)
        with self._guard("reading a kernel profile"), self._engine.connect() as conn:
            head = conn.execute(q).first()
            if head is None:
                return None
            kernels = conn.execute(select(k.kernel, k.op_type, k.kernel_us).where(k.profile_id == head.id)
                                   .order_by(k.position)).all()
        return KernelProfile(fingerprint=fingerprint, platform_id=pid, batch_size=int(batch_size),
                             kernels=tuple(KernelTiming(n, o, float(us)) for n, o, us in kernels),
                             coverage=head.coverage, pass_id=head.pass_id, n_passes=head.n_passes,
                             source=head.source, measured_at=head.measured_at)

    def known_graphs(self, fingerprints: Sequence[str]) -> set[str]:
        """The subset of ``fingerprints`` whose graph is stored."""
        return self._known(GraphRow.fingerprint, fingerprints, "checking graphs")


def _profile_values(item: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, float]]]:
    """``(profile columns, [(kernel, op type, µs)] slowest first)`` of one put_kernel_profiles item,
    validated (one-line :class:`InvalidInputError` naming the graph, the kernel and the value)."""
    if not isinstance(item, Mapping):
        raise InvalidInputError(f"kernel profile: an item must be a mapping; got {type(item).__name__}")
    fp = item.get("fingerprint")
    if not isinstance(fp, str) or not 0 < len(fp) <= 64:
        raise InvalidInputError(f"kernel profile: fingerprint must be a string of 1 to 64 characters; got {fp!r}")
    where = f"kernel profile of {fp}"
    kernels = item.get("kernels")
    if isinstance(kernels, (str, bytes, Mapping)) or not isinstance(kernels, Sequence) or not kernels:
        raise InvalidInputError(f"{where}: kernels must be a non-empty list of (kernel, op type, µs); "
                                f"got {type(kernels).__name__ if kernels is not None else None}")
    rows: list[tuple[str, str, float]] = []
    seen: set[str] = set()
    for i, k in enumerate(kernels):
        if isinstance(k, KernelTiming):
            k = (k.kernel, k.op_type, k.kernel_us)
        if isinstance(k, (str, bytes)) or not isinstance(k, Sequence) or len(k) != 3:
            raise InvalidInputError(f"{where}: kernel {i} must be (kernel name, op type, µs); got {k!r}")
        name, op, us = k
        if not isinstance(name, str) or not 0 < len(name) <= 256:
            raise InvalidInputError(f"{where}: kernel {i}: the name must be a string of 1 to 256 characters; got {name!r}")
        if not isinstance(op, str) or len(op) > 128:
            raise InvalidInputError(f"{where}: kernel {name!r}: op type must be a string of at most 128 "
                                    f"characters; got {op!r}")
        if isinstance(us, bool) or not isinstance(us, (int, float)) or not math.isfinite(us) or us < 0:
            raise InvalidInputError(f"{where}: kernel {name!r}: the time must be a finite number of µs >= 0; got {us!r}")
        if name in seen:
            raise InvalidInputError(f"{where}: kernel {name!r} is listed twice; kernel names must be unique")
        seen.add(name)
        rows.append((name, op, float(us)))
    cov, n, pass_id = item.get("coverage"), item.get("n_passes"), item.get("pass_id")
    if cov is not None and (isinstance(cov, bool) or not isinstance(cov, (int, float)) or not math.isfinite(cov)
                            or cov <= 0):
        raise InvalidInputError(f"{where}: coverage (kernel sum / profiled run) must be a finite number > 0 or "
                                f"None; got {cov!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidInputError(f"{where}: n_passes must be an integer >= 1 or None; got {n!r}")
    if pass_id is not None and (not isinstance(pass_id, str) or not 0 < len(pass_id) <= 64):
        raise InvalidInputError(f"{where}: pass_id must be a string of 1 to 64 characters or None; got {pass_id!r}")
    rows.sort(key=lambda r: (-r[2], r[0]))
    return ({"graph_fingerprint": fp, "coverage": None if cov is None else float(cov), "n_passes": n,
             "pass_id": pass_id}, rows)


__all__ = ["KernelProfileMethods"]
