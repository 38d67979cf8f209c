"""The measurement store: graphs, platforms and latency measurements in SQLite or PostgreSQL.

Location: ``Store(url)``; else the ``ARCHCAST_DB`` environment variable; else
``<platformdirs.user_data_dir("archcast")>/archcast.db``. A location is a SQLAlchemy URL
(``sqlite:///path``, ``postgresql://user@host/db`` — driven by psycopg 3) or a plain file path
(SQLite). ``create=False`` (read commands) refuses a database that does not exist instead of
creating it. Opening a store brings its schema to the head Alembic revision
(:mod:`archcast.store.migrate`); an SQLite file is checked (``PRAGMA quick_check``) once per
process and file state, so a damaged file is reported instead of read.

SQLite runs in WAL mode with a busy timeout; every write is one ``BEGIN IMMEDIATE`` transaction,
so concurrent writers (several profiling processes) queue instead of failing; on PostgreSQL a
transaction-scoped advisory lock per (graph, platform, batch) does the same for one key, and a process killed
mid-write leaves the database as of its last commit. Writes are idempotent: recording a
measurement for a (graph, platform, batch size) that has one marks the older row
``is_current = False`` in the same transaction (history is kept); a partial unique index
guarantees one current row. Nothing here deletes measurement rows.

Kernel profiles (:mod:`archcast.store.kernel_profiles`: ``put_kernel_profile``,
``kernel_profile``) are one per (graph, platform, batch size); a new one replaces the old one.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence, Union

from sqlalchemy import func, select, text, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from archcast.profile.measurement import Measurement
from archcast.profile.platform import Platform
from archcast.store import migrate
from archcast.store.connect import guard, make_engine, quick_check
from archcast.store.errors import StoreCorruptError, StoreError, StoreInputError
from archcast.store.kernel_profiles import KernelProfileMethods
from archcast.store.location import DB_FILE, DIALECTS, ENV_VAR, default_url, to_url
from archcast.store.pushes import PUSHABLE_COLUMNS, prepare_push
from archcast.store.records import (
    RECORD_COLUMNS,
    KernelProfile,
    MeasurementRecord,
    finite,
    onnx_key,
    parse_time,
    record_columns,
    record_of_row,
    sample_key,
    utcnow,
)
from archcast.store.schema import (
    SCHEMA_VERSION,
    GraphRow,
    KernelProfileRow,
    MeasurementRow,
    MetaRow,
    PlatformRow,
    SampleAliasRow,
)
from archcast.store.tokens import TokenMethods

if TYPE_CHECKING:
    from archcast.graph.ir import NetGraph
    from archcast.zoo.base import ZooSample

_CURRENT = MeasurementRow.is_current == true()  # "= 1", the predicate of the partial unique index (not "IS 1")
_WRITE_RETRIES = 5  # PostgreSQL: a concurrent writer can win the unique index; retry the transaction
Result = Union[Measurement, str, BaseException]


class Store(TokenMethods, KernelProfileMethods):
    """Graphs, platforms and measurements in one database (see the module docstring).

    Args:
        url: SQLAlchemy URL or SQLite file path; default :func:`default_url`.
        create: create missing tables (a profiling worker that only reads passes False).
        busy_timeout_s: how long an SQLite writer waits for the lock before :class:`StoreLockedError`.

    Raises:
        StoreCorruptError: the file is not an SQLite database or is damaged (it is not modified).
        StoreError: unsupported URL, unreadable location, or a schema from another archcast version.
    """

    def __init__(self, url: str | Path | None = None, *, create: bool = True, busy_timeout_s: float = 60.0,
                 check: bool = True) -> None:
        self.url = to_url(url if url is not None else default_url())
        self.busy_timeout_s = float(busy_timeout_s)
        self._known_platforms: set[str] = set()
        backend = self.url.get_backend_name()
        if backend not in DIALECTS:
            raise StoreError(f"database {self.location}: dialect {backend!r} is not supported; valid: {', '.join(DIALECTS)}")
        if not create and self.path is not None and not self.path.is_file():
            raise StoreError(f"database {self.location} does not exist; give an existing store with --db or "
                             f"{ENV_VAR} (a command that writes, such as archcast profile, creates one)")
        self._engine = make_engine(self.url, self.path, self.location, self.busy_timeout_s, create)
        with self._guard("opening it"):
            if check and self.path is not None:
                quick_check(self._engine, self.path, self.location)
            self._open_schema(create)

    def _open_schema(self, create: bool) -> None:
        """Check the schema revision; create or upgrade it to head when it is not there yet."""
        with self._engine.connect() as conn, conn.begin():
            revision = migrate.current_revision(conn)
        if revision is None and not create:
            raise StoreError(f"database {self.location} holds no archcast store (no tables); give an existing "
                             "store, or create it with a command that writes (archcast profile, archcast serve)")
        if revision != migrate.head():
            with self._engine.connect() as conn:
                conn.execution_options(archcast_write=True)
                with conn.begin():
                    if self.dialect == "postgresql":  # one migrator at a time; the others find head
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": migrate.PG_LOCK_KEY})
                    migrate.upgrade(conn, self.location)
                    if conn.execute(select(MetaRow.value).where(MetaRow.key == "schema_version")).scalar() is None:
                        conn.execute(MetaRow.__table__.insert().values(key="schema_version", value=SCHEMA_VERSION))
        with self._engine.connect() as conn, conn.begin():
            version = conn.execute(select(MetaRow.value).where(MetaRow.key == "schema_version")).scalar()
        if version is not None and version != SCHEMA_VERSION:
            raise StoreError(f"database {self.location} has archcast schema version {version}; this archcast "
                             f"reads version {SCHEMA_VERSION} (use a matching archcast, or another --db)")

    # ------------------------------------------------------------------ plumbing
    @property
    def location(self) -> str:
        """The database for messages: the SQLite file path, or the URL without password."""
        if self.url.get_backend_name() == "sqlite":
            return repr(self.url.database or ":memory:")
        return self.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.url.get_backend_name()

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None (PostgreSQL, in-memory SQLite)."""
        db = self.url.database
        return Path(db) if self.url.get_backend_name() == "sqlite" and db and db != ":memory:" else None

    def _guard(self, action: str) -> Any:
        """Driver errors as store errors that name the database (a context manager)."""
        return guard(self.location, self.busy_timeout_s, action)

    @contextmanager
    def _tx(self, action: str, *, write: bool) -> Iterator[Session]:
        """One transaction (``BEGIN IMMEDIATE`` for writers on SQLite) wrapped in an ORM session."""
        with self._guard(action), self._engine.connect() as conn:
            if write:
                conn.execution_options(archcast_write=True)
            with conn.begin(), Session(bind=conn, expire_on_commit=False, autoflush=True) as s:
                yield s
                s.flush()

    def _write(self, action: str, fn: Any) -> Any:
        """Run ``fn(session)`` in a write transaction; retry when a concurrent writer won a unique key."""
        for attempt in range(_WRITE_RETRIES):
            try:
                with self._tx(action, write=True) as s:
                    return fn(s)
            except IntegrityError as e:
                if attempt == _WRITE_RETRIES - 1:
                    raise StoreError(f"database {self.location}: {action} keeps conflicting: {e.orig}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.location})"

    # ------------------------------------------------------------------ graphs and platforms
    @staticmethod
    def _graph_row(s: Session, fp: str, **values: Any) -> str:
        row = s.get(GraphRow, fp)
        if row is None:
            s.add(GraphRow(fingerprint=fp, created=utcnow(), **values))
        else:  # keep what is there; fill what was missing (e.g. provenance of an imported graph)
            for k, v in values.items():
                if v is not None and getattr(row, k) in (None, ""):
                    setattr(row, k, v)
        return fp

    def _graph_values(self, graph: "NetGraph", sample: "ZooSample | None", onnx_bytes: bytes | None) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": graph.name[:256], "n_nodes": len(graph.nodes), "flops": int(graph.flops),
            "params": int(graph.params), "memory_bytes": int(graph.memory_bytes),
            "ir_json": zlib.compress(graph.to_json().encode(), 6),
            "family": graph.meta.get("family"),
        }
        if sample is not None:
            values.update(family=sample.family, seed=int(sample.seed), generator_version=str(sample.generator_version),
                          generator_config=sample.config_json())
        elif onnx_bytes is not None:  # not regenerable: keep the weight-free ONNX
            values["onnx_zlib"] = zlib.compress(onnx_bytes, 6)
        return values

    def add_graph(self, graph: "NetGraph", sample: "ZooSample | None" = None, *, onnx_bytes: bytes | None = None,
                  family: str | None = None) -> str:
        """Insert ``graph`` (no-op if its fingerprint is stored; missing provenance is filled in).

        ``sample`` records how to regenerate it; without one, pass the weight-free ``onnx_bytes``
        so that it can be exported later. Returns the fingerprint.
        """
        fp = graph.fingerprint()
        values = self._graph_values(graph, sample, onnx_bytes)
        if family is not None:
            values["family"] = family
        return self._write(f"adding graph {fp}", lambda s: self._graph_row(s, fp, **values))

    def add_stub(self, key: str, *, sample: "ZooSample | None" = None, name: str = "") -> str:
        """A graph row without IR (``sample_key``/``onnx_key``) so that a failure can be recorded."""
        values: dict[str, Any] = {"name": name[:256]}
        if sample is not None:
            values.update(family=sample.family, seed=int(sample.seed), generator_version=str(sample.generator_version),
                          generator_config=sample.config_json(), name=name or sample.key)
        return self._write(f"adding stub {key}", lambda s: self._graph_row(s, key, **values))

    def add_alias(self, sample: "ZooSample", fingerprint: str) -> str:
        """Note that ``sample`` builds the stored graph ``fingerprint`` (found by the runner when a
        new seed reproduces a measured network), so that resumed runs skip it. Returns its key."""
        key = sample_key(sample)

        def fn(s: Session) -> str:
            if s.get(GraphRow, fingerprint) is None:
                raise StoreError(f"database {self.location} has no graph {fingerprint!r}; add_graph first")
            if s.get(SampleAliasRow, key) is None:
                s.add(SampleAliasRow(sample_key=key, family=sample.family, seed=int(sample.seed),
                                     generator_version=str(sample.generator_version),
                                     generator_config=sample.config_json(), graph_fingerprint=fingerprint,
                                     created=utcnow()))
            return key

        return self._write(f"adding sample alias {key}", fn)

    def _platform_row(self, s: Session, p: Platform) -> str:
        pid = p.platform_id
        if pid in self._known_platforms:  # committed before (rows are never deleted): no round trip
            return pid
        if s.get(PlatformRow, pid) is None:
            s.add(PlatformRow(platform_id=pid, created=utcnow(), **{k: v for k, v in p.to_dict().items()
                                                                      if k != "platform_id"}))
        else:
            self._known_platforms.add(pid)
        return pid

    def add_platform(self, platform: Platform) -> str:
        """Insert ``platform`` (no-op when stored). Returns its ``platform_id``."""
        return self._write(f"adding platform {platform.name}", lambda s: self._platform_row(s, platform))

    def platforms(self) -> list[Platform]:
        with self._tx("listing platforms", write=False) as s:
            rows = s.scalars(select(PlatformRow).order_by(PlatformRow.name)).all()
            return [self._platform_of(r) for r in rows]

    @staticmethod
    def _platform_of(r: PlatformRow) -> Platform:
        return Platform(name=r.name, backend=r.backend, device=r.device, runtime=r.runtime,
                        runtime_version=r.runtime_version, threads=r.threads, precision=r.precision,
                        graph_opt_level=r.graph_opt_level)

    def resolve_platform(self, ref: str | Platform) -> str:
        """``platform_id`` for a Platform, an id, or a unique platform name (errors list the valid ones)."""
        if isinstance(ref, Platform):
            return ref.platform_id
        with self._tx("looking up a platform", write=False) as s:
            rows = s.scalars(select(PlatformRow)).all()
        ids = [r.platform_id for r in rows if ref in (r.platform_id, r.name)]
        if len(ids) == 1:
            return ids[0]
        valid = ", ".join(f"{r.platform_id} ({r.name})" for r in rows) or "(none: the store is empty)"
        if not ids:
            raise StoreInputError(f"database {self.location} has no platform {ref!r}; valid: {valid}")
        raise StoreInputError(f"platform name {ref!r} is ambiguous in {self.location}; use an id: {valid}")

    def graph(self, fingerprint: str) -> "NetGraph":
        """The stored :class:`NetGraph` of ``fingerprint``."""
        from archcast.graph.ir import NetGraph

        with self._tx("reading a graph", write=False) as s:
            row = s.get(GraphRow, fingerprint)
            blob = row.ir_json if row is not None else None
        if row is None:
            raise StoreError(f"database {self.location} has no graph {fingerprint!r}")
        if blob is None:
            raise StoreError(f"graph {fingerprint!r} in {self.location} is a stub of a failed export: it has no IR")
        try:
            ir = zlib.decompress(blob).decode()
        except (zlib.error, UnicodeDecodeError) as e:
            raise StoreCorruptError(f"database {self.location}: the stored IR of graph {fingerprint!r} is damaged "
                                    f"({e}); re-add the graph or restore the database from a copy") from None
        return NetGraph.from_json(ir)

    def graph_info(self, fingerprint: str) -> dict[str, Any] | None:
        """A graph's stored metadata (no IR): provenance, size, whether it has IR/ONNX; None if absent."""
        cols = [c for c in GraphRow.__table__.columns if c.name not in ("ir_json", "onnx_zlib")]
        q = select(*cols, GraphRow.ir_json.is_not(None), GraphRow.onnx_zlib.is_not(None)).where(
            GraphRow.fingerprint == fingerprint)
        with self._tx("reading a graph", write=False) as s:
            row = s.execute(q).first()
        if row is None:
            return None
        out = {c.name: v for c, v in zip(cols, row[:len(cols)])}
        out["created"] = out["created"].isoformat()
        out["has_ir"], out["has_onnx"] = bool(row[-2]), bool(row[-1])
        return out

    # ------------------------------------------------------------------ measurements
    @staticmethod
    def _measurement_values(result: Result) -> dict[str, Any]:
        if isinstance(result, Measurement):
            m = result
            return {
                "status": "ok", "error": None, "latency_ms_min": m.latency_ms_min,
                "latency_ms_median": m.latency_ms_median, "latency_ms_mean": m.latency_ms_mean,
                "latency_ms_p90": m.latency_ms_p90, "latency_ms_std": m.latency_ms_std, "latency_cv": m.latency_cv,
                "n_runs": m.n_runs, "warmup_runs": m.warmup_runs, "host": m.host or None,
                "input_shapes": json.dumps(m.input_shapes, sort_keys=True),
                "node_profile": json.dumps(m.node_profile.summary()) if m.node_profile else None,
                "session_s": m.session_s, "measure_s": m.measure_s,
                "measured_at": parse_time(m.timestamp),
                "cpu_ms_min": m.cpu_ms_min, "cpu_ms_median": m.cpu_ms_median, "cpu_cv": m.cpu_cv,
            }
        reason = result if isinstance(result, str) else (str(result) or type(result).__name__)
        return {"status": "failed", "error": reason[:2000]}

    def _insert(self, s: Session, fp: str, pid: str, batch_size: int, values: dict[str, Any], source: str,
                push_id: str | None = None) -> int:
        if s.get(GraphRow, fp) is None:
            raise StoreInputError(f"database {self.location} has no graph {fp!r}; call add_graph (or add_stub) first")
        if self.dialect == "postgresql":  # writers of one (graph, platform, batch) queue here, not at the index
            key = hashlib.sha256(f"{fp}\0{pid}\0{int(batch_size)}".encode()).digest()
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int.from_bytes(key[:8], "big", signed=True)})
        s.execute(update(MeasurementRow)
                  .where(MeasurementRow.graph_fingerprint == fp, MeasurementRow.platform_id == pid,
                         MeasurementRow.batch_size == batch_size, _CURRENT)
                  .values(is_current=False))
        row = MeasurementRow(graph_fingerprint=fp, platform_id=pid, batch_size=int(batch_size), source=source,
                             is_current=True, push_id=push_id,
                             **{"measured_at": utcnow(), **{k: finite(v) for k, v in values.items()}})
        s.add(row)
        s.flush()
        return int(row.id)

    def record(self, fingerprint: str, platform: Platform | str, result: Result, *,
               batch_size: int | None = None, source: str = "archcast", pass_id: str | None = None,
               speed_index: float | None = None, role: str | None = None) -> int:
        """Store one measurement (``Measurement``) or failure (reason string or exception).

        ``pass_id``, ``speed_index`` and ``role`` (None or ``"canary"``) are the collection
        protocol's bookkeeping (:mod:`archcast.collect`).

        The previous current row of (graph, platform, batch) becomes history in the same
        transaction. ``platform`` may be a Platform (added if new) or a stored ``platform_id``.
        ``batch_size`` is required for failures (a Measurement carries its own). Returns the row id.
        """
        if isinstance(result, Measurement):
            batch_size = result.batch_size if batch_size is None else batch_size
        if batch_size is None or int(batch_size) < 1:
            raise StoreError(f"record() needs batch_size >= 1 for a failure; got {batch_size!r}")
        values = self._measurement_values(result)
        values.update(pass_id=pass_id, speed_index=speed_index, role=role)
        pid = platform.platform_id if isinstance(platform, Platform) else str(platform)

        def fn(s: Session) -> int:
            if isinstance(platform, Platform):
                self._platform_row(s, platform)
            elif s.get(PlatformRow, pid) is None:
                raise StoreInputError(f"database {self.location} has no platform {pid!r}; add_platform first")
            return self._insert(s, fingerprint, pid, int(batch_size), values, source)

        return self._write(f"recording a measurement of {fingerprint}", fn)

    def has_measurement(self, fingerprint: str, platform_id: str, batch_size: int, *, include_failed: bool = True) -> bool:
        """Whether (graph, platform, batch) has a current row (``ok`` only unless ``include_failed``)."""
        q = select(MeasurementRow.id).where(
            MeasurementRow.graph_fingerprint == fingerprint, MeasurementRow.platform_id == platform_id,
            MeasurementRow.batch_size == int(batch_size), _CURRENT)
        if not include_failed:
            q = q.where(MeasurementRow.status == "ok")
        with self._tx("checking a measurement", write=False) as s:
            return s.execute(q.limit(1)).first() is not None

    def current_measurement(self, fingerprint: str, platform_id: str, batch_size: int, *,
                            status: str | None = "ok") -> MeasurementRecord | None:
        """The current row of (graph, platform, batch), or None (only ``ok`` rows unless ``status=None``)."""
        q = (select(*record_columns())
             .join(GraphRow, MeasurementRow.graph_fingerprint == GraphRow.fingerprint)
             .join(PlatformRow, MeasurementRow.platform_id == PlatformRow.platform_id)
             .where(MeasurementRow.graph_fingerprint == fingerprint, MeasurementRow.platform_id == platform_id,
                    MeasurementRow.batch_size == int(batch_size), _CURRENT))
        if status is not None:
            q = q.where(MeasurementRow.status == status)
        with self._guard("reading a measurement"), self._engine.connect() as conn:
            row = conn.execute(q.limit(1)).first()
        return record_of_row(row) if row is not None else None

    def current_latency(self, fingerprint: str, platform_id: str, batch_size: int) -> dict[str, Any] | None:
        """The current ``ok`` row of (graph, platform, batch) as ``{"latency_ms" (median), "min_ms",
        "measured_at" (ISO), "n_runs"}`` — the ``measured`` field of a prediction — or None. One
        index lookup, no ORM objects: the service calls it on every predict request."""
        m = MeasurementRow
        q = (select(m.latency_ms_median, m.latency_ms_min, m.measured_at, m.n_runs)
             .where(m.graph_fingerprint == fingerprint, m.platform_id == platform_id, m.batch_size == int(batch_size),
                    _CURRENT, m.status == "ok").limit(1))
        with self._guard("reading a measurement"), self._engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None or row[0] is None:
            return None
        return {"latency_ms": float(row[0]), "min_ms": None if row[1] is None else float(row[1]),
                "measured_at": row[2].isoformat(), "n_runs": row[3]}

    def measured_samples(self, platform_id: str, batch_size: int, *, include_failed: bool = True) -> set[tuple[str, int, str, str]]:
        """``(family, seed, generator_version, config_json)`` of zoo samples with a current row on
        (platform, batch), aliases included: what a resumed profiling run skips without exporting."""
        q = (select(GraphRow.family, GraphRow.seed, GraphRow.generator_version, GraphRow.generator_config)
             .join(MeasurementRow, MeasurementRow.graph_fingerprint == GraphRow.fingerprint)
             .where(MeasurementRow.platform_id == platform_id, MeasurementRow.batch_size == int(batch_size),
                    _CURRENT, GraphRow.seed.is_not(None)))
        a = (select(SampleAliasRow.family, SampleAliasRow.seed, SampleAliasRow.generator_version,
                    SampleAliasRow.generator_config)
             .join(MeasurementRow, MeasurementRow.graph_fingerprint == SampleAliasRow.graph_fingerprint)
             .where(MeasurementRow.platform_id == platform_id, MeasurementRow.batch_size == int(batch_size),
                    _CURRENT))
        if not include_failed:
            q = q.where(MeasurementRow.status == "ok")
            a = a.where(MeasurementRow.status == "ok")
        with self._tx("listing measured samples", write=False) as s:
            return {(f, int(sd), v, c) for query in (q, a) for f, sd, v, c in s.execute(query)}

    def measurements(self, platform: str | Platform | None = None, family: str | None = None, *,
                     current_only: bool = True, status: str | None = None,
                     batch_size: int | None = None, fingerprint: str | None = None,
                     after_id: int | None = None, limit: int | None = None,
                     newest_first: bool = False) -> list[MeasurementRecord]:
        """Measurements joined with graph and platform, oldest first.

        ``platform``: a Platform, platform id or unique name; ``family``: zoo family (or NNLQP
        model type); ``status``: ``"ok"``/``"failed"``; ``current_only=False`` adds history rows;
        ``fingerprint``: one graph. Pages: ``limit`` rows with ``id > after_id`` (keyset, stable
        while rows are added); ``newest_first`` reverses the order (``after_id`` then means below).
        """
        q = (select(*record_columns())
             .join(GraphRow, MeasurementRow.graph_fingerprint == GraphRow.fingerprint)
             .join(PlatformRow, MeasurementRow.platform_id == PlatformRow.platform_id)
             .order_by(MeasurementRow.id.desc() if newest_first else MeasurementRow.id))
        if platform is not None:
            q = q.where(MeasurementRow.platform_id == self.resolve_platform(platform))
        if family is not None:
            q = q.where(GraphRow.family == family)
        if fingerprint is not None:
            q = q.where(MeasurementRow.graph_fingerprint == fingerprint)
        if after_id is not None:
            q = q.where(MeasurementRow.id < int(after_id) if newest_first else MeasurementRow.id > int(after_id))
        if limit is not None:
            q = q.limit(max(0, int(limit)))
        if current_only:
            q = q.where(_CURRENT)
        if status is not None:
            q = q.where(MeasurementRow.status == status)
        if batch_size is not None:
            q = q.where(MeasurementRow.batch_size == int(batch_size))
        with self._guard("listing measurements"), self._engine.connect() as conn:
            return [record_of_row(r) for r in conn.execute(q)]

    def stats(self) -> dict[str, Any]:
        """Counts for ``archcast db stats``: graphs, platforms, rows, per platform and per family."""
        with self._tx("counting", write=False) as s:
            n_graphs = s.scalar(select(func.count()).select_from(GraphRow).where(GraphRow.ir_json.is_not(None)))
            n_stubs = s.scalar(select(func.count()).select_from(GraphRow).where(GraphRow.ir_json.is_(None)))
            n_rows = s.scalar(select(func.count()).select_from(MeasurementRow))
            n_profiles = s.scalar(select(func.count()).select_from(KernelProfileRow))
            cur = _CURRENT
            per_platform = s.execute(
                select(PlatformRow.platform_id, PlatformRow.name, PlatformRow.device, MeasurementRow.status, func.count())
                .join(MeasurementRow, MeasurementRow.platform_id == PlatformRow.platform_id)
                .where(cur).group_by(PlatformRow.platform_id, PlatformRow.name, PlatformRow.device, MeasurementRow.status)
            ).all()
            n_platforms = s.scalar(select(func.count()).select_from(PlatformRow))
            per_family = s.execute(
                select(GraphRow.family, MeasurementRow.status, func.count())
                .join(MeasurementRow, MeasurementRow.graph_fingerprint == GraphRow.fingerprint)
                .where(cur).group_by(GraphRow.family, MeasurementRow.status)
            ).all()
        platforms: dict[str, dict[str, Any]] = {}
        for pid, name, device, st, n in per_platform:
            platforms.setdefault(pid, {"name": name, "device": device, "ok": 0, "failed": 0})[st] = n
        families: dict[str, dict[str, int]] = {}
        for fam, st, n in per_family:
            families.setdefault(fam or "(none)", {"ok": 0, "failed": 0})[st] = n
        current = sum(p["ok"] + p["failed"] for p in platforms.values())
        out = {
            "location": self.location.strip("'"),
            "graphs": int(n_graphs or 0), "failed_stubs": int(n_stubs or 0), "platforms": int(n_platforms or 0),
            "measurements_current": current,
            "measurements_ok": sum(p["ok"] for p in platforms.values()),
            "measurements_failed": sum(p["failed"] for p in platforms.values()),
            "measurements_history": int(n_rows or 0) - current,
            "kernel_profiles": int(n_profiles or 0),
            "per_platform": platforms, "per_family": dict(sorted(families.items())),
        }
        if self.path is not None and self.path.exists():
            out["file_bytes"] = self.path.stat().st_size
        return out

    # ------------------------------------------------------------------ pushed measurements (archcast serve)
    def ingest(self, items: Sequence[Mapping[str, Any]]) -> list[tuple[int, bool]]:
        """Store measurements pushed by device agents, all in one transaction.

        Each item: ``fingerprint``; ``graph`` (a NetGraph, needed when the store lacks it) with
        optional ``provenance`` (``family``, ``seed``, ``generator_version``, ``generator_config``);
        ``platform`` (a Platform); ``batch_size``; ``values`` ({column: value} of
        :data:`PUSHABLE_COLUMNS`, validated against the column types; ``status`` required);
        optional ``push_id`` (a client key: an item whose ``push_id`` is stored is skipped) and
        ``source``. Returns ``(row id, created)`` per item.

        Raises:
            StoreError: a bad value (names the item and column), or a graph the store lacks.
        """
        prepared = [prepare_push(i, item) for i, item in enumerate(items)]

        def fn(s: Session) -> list[tuple[int, bool]]:
            out = []
            for item, values in prepared:
                pid = item.get("push_id")
                if pid is not None:
                    old = s.scalar(select(MeasurementRow.id).where(MeasurementRow.push_id == pid))
                    if old is not None:
                        out.append((int(old), False))
                        continue
                fp = item["fingerprint"]
                if item.get("graph") is not None:
                    self._graph_row(s, fp, **self._pushed_graph_values(item["graph"], item.get("provenance")))
                plat = self._platform_row(s, item["platform"])
                out.append((self._insert(s, fp, plat, int(item["batch_size"]), values,
                                         str(item.get("source") or "push")[:32], push_id=pid), True))
            return out

        return self._write(f"storing {len(prepared)} pushed measurements", fn)

    def row_values(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """``{id: {column: value}}`` of :data:`PUSHABLE_COLUMNS` for measurement rows (times as ISO text):
        what an agent sends to a team store."""
        cols = [MeasurementRow.__table__.c[c] for c in PUSHABLE_COLUMNS]
        out: dict[int, dict[str, Any]] = {}
        with self._tx("reading measurement rows", write=False) as s:
            for k in range(0, len(ids), 500):
                q = select(MeasurementRow.id, *cols).where(MeasurementRow.id.in_([int(i) for i in ids[k:k + 500]]))
                for row in s.execute(q):
                    vals = dict(zip(PUSHABLE_COLUMNS, row[1:]))
                    vals["measured_at"] = vals["measured_at"].isoformat() if vals.get("measured_at") else None
                    out[int(row[0])] = vals
        return out

    def known_push_ids(self, push_ids: Sequence[str]) -> set[str]:
        """The subset of ``push_ids`` already stored (agents push only the others)."""
        return self._known(MeasurementRow.push_id, push_ids, "checking pushed ids")

    def _known(self, column: Any, values: Sequence[str], action: str) -> set[str]:
        """The subset of ``values`` found in ``column`` (queried in chunks of 500)."""
        out: set[str] = set()
        vals = [str(v) for v in values]
        with self._tx(action, write=False) as s:
            for k in range(0, len(vals), 500):
                out.update(s.scalars(select(column).where(column.in_(vals[k:k + 500]))))
        return out

    def _pushed_graph_values(self, graph: "NetGraph", prov: Mapping[str, Any] | None) -> dict[str, Any]:
        values = self._graph_values(graph, None, None)
        for k in ("family", "seed", "generator_version", "generator_config"):
            if prov and prov.get(k) is not None:
                values[k] = int(prov[k]) if k == "seed" else str(prov[k])
        return values

__all__ = ["DB_FILE", "ENV_VAR", "PUSHABLE_COLUMNS", "RECORD_COLUMNS", "KernelProfile", "MeasurementRecord", "Store",
           "default_url", "onnx_key", "sample_key"]


