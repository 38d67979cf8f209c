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
guarantees one current row. Nothing here deletes rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence, Union

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, create_engine, event, func, select, text, update
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from archcast.profile.measurement import Measurement
from archcast.profile.platform import Platform
from archcast.store import migrate
from archcast.store.errors import StoreCorruptError, StoreError, StoreInputError, StoreLockedError
from archcast.store.schema import (
    SCHEMA_VERSION,
    STATUSES,
    TOKEN_SCOPES,
    ApiTokenRow,
    GraphRow,
    MeasurementRow,
    MetaRow,
    PlatformRow,
    SampleAliasRow,
)

if TYPE_CHECKING:
    from archcast.graph.ir import NetGraph
    from archcast.zoo.base import ZooSample

ENV_VAR = "ARCHCAST_DB"
DB_FILE = "archcast.db"
DIALECTS = ("sqlite", "postgresql")
_WRITE_RETRIES = 5  # PostgreSQL: a concurrent writer can win the unique index; retry the transaction
PG_DRIVER = "psycopg"  # postgresql:// means psycopg 3 (SQLAlchemy's own default would be psycopg2)
_checked: dict[tuple[str, int, int], bool] = {}  # SQLite files that passed quick_check: (path, size, mtime)
# measurement columns a pushed row may set (everything but keys and bookkeeping); new columns join by themselves
PUSHABLE_COLUMNS = tuple(c.name for c in MeasurementRow.__table__.columns
                         if c.name not in {"id", "graph_fingerprint", "platform_id", "batch_size", "is_current",
                                           "push_id", "source"})

Result = Union[Measurement, str, BaseException]


def default_url() -> str:
    """The store location when none is given: ``$ARCHCAST_DB`` or the per-user data directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    import platformdirs

    return str(Path(platformdirs.user_data_dir("archcast")) / DB_FILE)


def _to_url(location: str | Path) -> URL:
    loc = str(location)
    if "://" not in loc:
        return URL.create("sqlite", database=str(Path(loc).expanduser().resolve()))
    try:
        url = make_url(loc)
    except ArgumentError as e:
        raise StoreError(f"database URL {loc!r} is not valid ({e}); use sqlite:///PATH, postgresql://... or a file path") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername=f"postgresql+{PG_DRIVER}")
    return url


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def sample_key(sample: "ZooSample") -> str:
    """Stub fingerprint for a zoo sample that produced no graph (its export failed)."""
    blob = "\0".join([sample.family, str(sample.seed), str(sample.generator_version), sample.config_json()])
    return "sample-" + hashlib.sha256(blob.encode()).hexdigest()[:24]


def onnx_key(data: bytes) -> str:
    """Stub fingerprint for ONNX bytes that could not be read as a graph."""
    return "onnx-" + hashlib.sha256(data).hexdigest()[:24]


@dataclass
class MeasurementRecord:
    """One measurement joined with its graph and platform (what :meth:`Store.measurements` returns).

    Latencies are milliseconds; ``None`` where not measured (failed rows, imported data sets
    that give one number, which lands in ``latency_ms_median``).
    """

    id: int
    fingerprint: str
    family: str | None
    seed: int | None
    generator_version: str | None
    generator_config: str | None
    name: str
    n_nodes: int | None
    flops: int | None
    params: int | None
    memory_bytes: int | None
    platform_id: str
    platform_name: str
    batch_size: int
    status: str
    error: str | None
    latency_ms_min: float | None
    latency_ms_median: float | None
    latency_ms_mean: float | None
    latency_ms_p90: float | None
    latency_ms_std: float | None
    latency_cv: float | None
    n_runs: int | None
    warmup_runs: int | None
    host: str | None
    source: str
    measured_at: datetime
    is_current: bool
    cpu_ms_min: float | None = None
    cpu_ms_median: float | None = None
    cpu_cv: float | None = None
    pass_id: str | None = None
    speed_index: float | None = None
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["measured_at"] = self.measured_at.isoformat()
        return d


RECORD_COLUMNS = tuple(f.name for f in fields(MeasurementRecord))


class Store:
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
        self.url = _to_url(url if url is not None else default_url())
        self.busy_timeout_s = float(busy_timeout_s)
        backend = self.url.get_backend_name()
        if backend not in DIALECTS:
            raise StoreError(f"database {self.location}: dialect {backend!r} is not supported; valid: {', '.join(DIALECTS)}")
        if not create and self.path is not None and not self.path.is_file():
            raise StoreError(f"database {self.location} does not exist; give an existing store with --db or "
                             f"{ENV_VAR} (a command that writes, such as archcast profile, creates one)")
        self._engine = self._make_engine(create)
        with self._guard("opening it"):
            if check and self.path is not None:
                self._quick_check()
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

    def _quick_check(self) -> None:
        """``PRAGMA quick_check`` of the SQLite file, once per process and (size, mtime)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return  # a new database
        key = (str(self.path), st.st_size, st.st_mtime_ns)
        if key in _checked:
            return
        with self._engine.connect() as conn, conn.begin():
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:
            detail = " ".join("; ".join(str(r) for r in rows[:3]).replace("*** in database main ***", "").split())
            raise StoreCorruptError(
                f"database {self.location} is damaged (quick_check: {detail[:200]}); it was left untouched: "
                "restore it from a copy, or move it away and pass another --db / ARCHCAST_DB")
        _checked[key] = True

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

    def _make_engine(self, create: bool = True) -> Engine:
        if self.url.get_backend_name() != "sqlite":
            try:
                return create_engine(self.url, pool_pre_ping=True, pool_size=8, max_overflow=16)
            except ImportError as e:  # the driver is an optional dependency of SQLAlchemy
                raise StoreError(f"database {self.location} needs the PostgreSQL driver {self.url.get_driver_name()!r} "
                                 f"({e}); install it: pip install 'psycopg[binary]'") from None
        kw: dict[str, Any] = {"connect_args": {"timeout": self.busy_timeout_s, "check_same_thread": False}}
        if self.path is None:  # in-memory: one shared connection, else every connection is a new DB
            kw.update(poolclass=StaticPool)
        else:
            if self.path.is_dir():
                raise StoreError(f"database {self.location} is a directory; give a file path")
            if create:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise StoreError(f"database {self.location}: cannot create its directory: {e}") from None
        engine = create_engine(self.url, **kw)
        timeout_ms = int(self.busy_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # archcast emits BEGIN itself (see _on_begin)
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                cur.execute("PRAGMA foreign_keys = ON")
                if self.path is not None:
                    cur.execute("PRAGMA journal_mode = WAL")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # writers take the write lock up front: no deadlock between two upgrading readers
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("archcast_write") else "BEGIN")

        return engine

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn driver errors into store errors that name the database."""
        try:
            yield
        except (DBAPIError, sqlite3.Error) as e:
            orig = getattr(e, "orig", None) or e
            msg = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
            low = msg.lower()
            if "locked" in low or "busy" in low:
                raise StoreLockedError(
                    f"database {self.location} is locked by another process (waited {self.busy_timeout_s:g} s) "
                    f"while {action}; retry when the other writer is done, or raise busy_timeout_s") from None
            if "not a database" in low or "malformed" in low or "corrupt" in low:
                raise StoreCorruptError(
                    f"database {self.location} is not a readable SQLite database ({msg}); it was left untouched: "
                    "move it away or pass another --db / ARCHCAST_DB") from None
            if isinstance(e, IntegrityError):
                raise
            raise StoreError(f"database {self.location}: error while {action}: {msg}") from None

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
            s.add(GraphRow(fingerprint=fp, created=_utcnow(), **values))
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
                                     created=_utcnow()))
            return key

        return self._write(f"adding sample alias {key}", fn)

    @staticmethod
    def _platform_row(s: Session, p: Platform) -> str:
        pid = p.platform_id
        if s.get(PlatformRow, pid) is None:
            s.add(PlatformRow(platform_id=pid, created=_utcnow(), **{k: v for k, v in p.to_dict().items()
                                                                      if k != "platform_id"}))
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
            raise StoreError(f"database {self.location} has no platform {ref!r}; valid: {valid}")
        raise StoreError(f"platform name {ref!r} is ambiguous in {self.location}; use an id: {valid}")

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
                "measured_at": _parse_time(m.timestamp),
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
                         MeasurementRow.batch_size == batch_size, MeasurementRow.is_current.is_(True))
                  .values(is_current=False))
        row = MeasurementRow(graph_fingerprint=fp, platform_id=pid, batch_size=int(batch_size), source=source,
                             is_current=True, push_id=push_id,
                             **{"measured_at": _utcnow(), **{k: _finite(v) for k, v in values.items()}})
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
            MeasurementRow.batch_size == int(batch_size), MeasurementRow.is_current.is_(True))
        if not include_failed:
            q = q.where(MeasurementRow.status == "ok")
        with self._tx("checking a measurement", write=False) as s:
            return s.execute(q.limit(1)).first() is not None

    def current_measurement(self, fingerprint: str, platform_id: str, batch_size: int, *,
                            status: str | None = "ok") -> MeasurementRecord | None:
        """The current row of (graph, platform, batch), or None (only ``ok`` rows unless ``status=None``)."""
        q = (select(MeasurementRow, GraphRow, PlatformRow.name)
             .join(GraphRow, MeasurementRow.graph_fingerprint == GraphRow.fingerprint)
             .join(PlatformRow, MeasurementRow.platform_id == PlatformRow.platform_id)
             .where(MeasurementRow.graph_fingerprint == fingerprint, MeasurementRow.platform_id == platform_id,
                    MeasurementRow.batch_size == int(batch_size), MeasurementRow.is_current.is_(True)))
        if status is not None:
            q = q.where(MeasurementRow.status == status)
        with self._tx("reading a measurement", write=False) as s:
            row = s.execute(q.limit(1)).first()
            return _record_of(*row) if row is not None else None

    def measured_samples(self, platform_id: str, batch_size: int, *, include_failed: bool = True) -> set[tuple[str, int, str, str]]:
        """``(family, seed, generator_version, config_json)`` of zoo samples with a current row on
        (platform, batch), aliases included: what a resumed profiling run skips without exporting."""
        q = (select(GraphRow.family, GraphRow.seed, GraphRow.generator_version, GraphRow.generator_config)
             .join(MeasurementRow, MeasurementRow.graph_fingerprint == GraphRow.fingerprint)
             .where(MeasurementRow.platform_id == platform_id, MeasurementRow.batch_size == int(batch_size),
                    MeasurementRow.is_current.is_(True), GraphRow.seed.is_not(None)))
        a = (select(SampleAliasRow.family, SampleAliasRow.seed, SampleAliasRow.generator_version,
                    SampleAliasRow.generator_config)
             .join(MeasurementRow, MeasurementRow.graph_fingerprint == SampleAliasRow.graph_fingerprint)
             .where(MeasurementRow.platform_id == platform_id, MeasurementRow.batch_size == int(batch_size),
                    MeasurementRow.is_current.is_(True)))
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
        q = (select(MeasurementRow, GraphRow, PlatformRow.name)
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
            q = q.where(MeasurementRow.is_current.is_(True))
        if status is not None:
            q = q.where(MeasurementRow.status == status)
        if batch_size is not None:
            q = q.where(MeasurementRow.batch_size == int(batch_size))
        with self._tx("listing measurements", write=False) as s:
            return [_record_of(m, g, pname) for m, g, pname in s.execute(q)]

    def stats(self) -> dict[str, Any]:
        """Counts for ``archcast db stats``: graphs, platforms, rows, per platform and per family."""
        with self._tx("counting", write=False) as s:
            n_graphs = s.scalar(select(func.count()).select_from(GraphRow).where(GraphRow.ir_json.is_not(None)))
            n_stubs = s.scalar(select(func.count()).select_from(GraphRow).where(GraphRow.ir_json.is_(None)))
            n_rows = s.scalar(select(func.count()).select_from(MeasurementRow))
            cur = MeasurementRow.is_current.is_(True)
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
        prepared = [self._prepare_push(i, item) for i, item in enumerate(items)]

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
        out: set[str] = set()
        ids = [str(i) for i in push_ids]
        with self._tx("checking pushed ids", write=False) as s:
            for k in range(0, len(ids), 500):
                out.update(s.scalars(select(MeasurementRow.push_id).where(MeasurementRow.push_id.in_(ids[k:k + 500]))))
        return out

    def _pushed_graph_values(self, graph: "NetGraph", prov: Mapping[str, Any] | None) -> dict[str, Any]:
        values = self._graph_values(graph, None, None)
        for k in ("family", "seed", "generator_version", "generator_config"):
            if prov and prov.get(k) is not None:
                values[k] = int(prov[k]) if k == "seed" else str(prov[k])
        return values

    def _prepare_push(self, i: int, item: Mapping[str, Any]) -> tuple[Mapping[str, Any], dict[str, Any]]:
        where = f"pushed item {i}"
        raw = item.get("values")
        if not isinstance(raw, Mapping):
            raise StoreInputError(f"{where}: values must be an object of measurement columns; got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(PUSHABLE_COLUMNS))
        if unknown:
            raise StoreInputError(f"{where}: unknown measurement column(s) {', '.join(map(repr, unknown))}; "
                             f"valid: {', '.join(PUSHABLE_COLUMNS)}")
        if raw.get("status") not in STATUSES:
            raise StoreInputError(f"{where}: status must be one of {', '.join(STATUSES)}; got {raw.get('status')!r}")
        b = item.get("batch_size")
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise StoreInputError(f"{where}: batch_size must be an integer >= 1; got {b!r}")
        if not isinstance(item.get("platform"), Platform):
            raise StoreInputError(f"{where}: platform must be a Platform")
        pid = item.get("push_id")
        if pid is not None and (not isinstance(pid, str) or not 8 <= len(pid) <= 64):
            raise StoreInputError(f"{where}: push_id must be a string of 8 to 64 characters; got {pid!r}")
        fp, graph = item.get("fingerprint"), item.get("graph")
        if not isinstance(fp, str) or not 1 <= len(fp) <= 64:
            raise StoreInputError(f"{where}: fingerprint must be a string of 1 to 64 characters; got {fp!r}")
        if graph is not None and graph.fingerprint() != fp:
            raise StoreInputError(f"{where}: the graph's fingerprint is {graph.fingerprint()}, not {fp}")
        cols = MeasurementRow.__table__.columns
        values = {k: _column_value(where, k, cols[k], v) for k, v in raw.items()}
        if values.get("measured_at") is None:
            values.pop("measured_at", None)  # the store's clock
        return item, values

    # ------------------------------------------------------------------ API tokens (archcast serve)
    def add_token(self, name: str, scope: str, token_sha256: str) -> None:
        """Store a token's SHA-256 hex digest under ``name`` with ``scope`` (read or write)."""
        if scope not in TOKEN_SCOPES:
            raise StoreError(f"token scope {scope!r} is not valid; valid: {', '.join(TOKEN_SCOPES)}")
        if not name or len(name) > 128:
            raise StoreError(f"token name must be 1 to 128 characters; got {name!r}")

        def fn(s: Session) -> None:
            if s.scalar(select(ApiTokenRow.name).where(ApiTokenRow.name == name)) is not None:
                raise StoreError(f"database {self.location} already has a token named {name!r}; "
                                 "revoke it first or pick another name")
            s.add(ApiTokenRow(token_sha256=token_sha256, name=name, scope=scope, created=_utcnow()))

        self._write(f"adding token {name!r}", fn)

    def token(self, token_sha256: str) -> tuple[str, str] | None:
        """``(name, scope)`` of the token with this digest, or None."""
        with self._tx("checking a token", write=False) as s:
            row = s.execute(select(ApiTokenRow.name, ApiTokenRow.scope)
                            .where(ApiTokenRow.token_sha256 == token_sha256)).first()
        return (row[0], row[1]) if row is not None else None

    def tokens(self) -> list[dict[str, Any]]:
        """Names, scopes and creation times of the stored tokens (never the digests)."""
        with self._tx("listing tokens", write=False) as s:
            rows = s.execute(select(ApiTokenRow.name, ApiTokenRow.scope, ApiTokenRow.created)
                             .order_by(ApiTokenRow.name)).all()
        return [{"name": n, "scope": sc, "created": c.isoformat()} for n, sc, c in rows]

    def revoke_token(self, name: str) -> bool:
        """Delete the token ``name``; False when there is none."""
        def fn(s: Session) -> bool:
            row = s.scalar(select(ApiTokenRow).where(ApiTokenRow.name == name))
            if row is None:
                return False
            s.delete(row)
            return True

        return self._write(f"revoking token {name!r}", fn)

    # ------------------------------------------------------------------ exchange (see archcast.store.exchange)
    def export_table(self, path: str | Path, format: str = "csv", *, platform: str | None = None,
                     current_only: bool = True) -> Path:
        """Write measurements (joined with graph + platform) as CSV or Parquet. Returns the path."""
        from archcast.store.exchange import export_table

        return export_table(self, path, format, platform=platform, current_only=current_only)

    def export_nnlqp(self, out_dir: str | Path, platform_id: str | None = None, *, progress: bool = False) -> Path:
        """Write an NNLQP data set (gt.txt + weight-free ONNX) of the current ok measurements."""
        from archcast.store.exchange import export_nnlqp

        return export_nnlqp(self, out_dir, platform_id, progress=progress)

    def import_nnlqp(self, root: str | Path, platform_name: str) -> dict[str, int]:
        """Read an NNLQP data set into the store; returns counts (see ``exchange.import_nnlqp``)."""
        from archcast.store.exchange import import_nnlqp

        return import_nnlqp(self, root, platform_name)


def _column_value(where: str, name: str, col: Any, v: Any) -> Any:
    """``v`` checked against the type of measurement column ``col`` (one-line errors)."""
    if v is None:
        if not col.nullable and name != "measured_at":
            raise StoreInputError(f"{where}: {name} must not be null")
        return None
    t = col.type
    bad = f"{where}: {name} must be"
    if isinstance(t, Boolean):
        if not isinstance(v, bool):
            raise StoreInputError(f"{bad} true or false; got {v!r}")
        return v
    if isinstance(t, Integer):
        if isinstance(v, bool) or not isinstance(v, int) or abs(v) >= 2 ** 31:
            raise StoreInputError(f"{bad} an integer; got {v!r}")
        return v
    if isinstance(t, Float):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise StoreInputError(f"{bad} a finite number; got {v!r}")
        return float(v)
    if isinstance(t, DateTime):
        try:
            return _parse_time(str(v))
        except ValueError:
            raise StoreInputError(f"{bad} an ISO 8601 time; got {v!r}") from None
    if isinstance(t, (String, Text)):
        if not isinstance(v, str):
            v = json.dumps(v, sort_keys=True)  # JSON columns (input_shapes, node_profile) may come as objects
        limit = getattr(t, "length", None) or 100_000
        if len(v) > limit:
            raise StoreInputError(f"{bad} at most {limit} characters; got {len(v)}")
        return v
    raise StoreInputError(f"{where}: column {name} cannot be pushed")


def _parse_time(ts: str) -> datetime:
    if not ts:
        return _utcnow()
    t = datetime.fromisoformat(ts)
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def _record_of(m: MeasurementRow, g: GraphRow, platform_name: str) -> MeasurementRecord:
    return MeasurementRecord(
        id=m.id, fingerprint=g.fingerprint, family=g.family, seed=g.seed, generator_version=g.generator_version,
        generator_config=g.generator_config, name=g.name, n_nodes=g.n_nodes, flops=g.flops, params=g.params,
        memory_bytes=g.memory_bytes, platform_id=m.platform_id, platform_name=platform_name,
        batch_size=m.batch_size, status=m.status, error=m.error, latency_ms_min=m.latency_ms_min,
        latency_ms_median=m.latency_ms_median, latency_ms_mean=m.latency_ms_mean, latency_ms_p90=m.latency_ms_p90,
        latency_ms_std=m.latency_ms_std, latency_cv=m.latency_cv, n_runs=m.n_runs, warmup_runs=m.warmup_runs,
        host=m.host, source=m.source, measured_at=m.measured_at, is_current=bool(m.is_current),
        cpu_ms_min=m.cpu_ms_min, cpu_ms_median=m.cpu_ms_median, cpu_cv=m.cpu_cv, pass_id=m.pass_id,
        speed_index=m.speed_index, role=m.role,
    )


__all__ = ["DB_FILE", "ENV_VAR", "PUSHABLE_COLUMNS", "RECORD_COLUMNS", "MeasurementRecord", "Store", "default_url",
           "onnx_key", "sample_key"]


