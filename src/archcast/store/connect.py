"""Connections to the store's database: engines, driver errors as store errors, SQLite checks."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import StaticPool

from archcast.store.errors import StoreCorruptError, StoreError, StoreLockedError

_CHECKED: dict[tuple[str, int, int], bool] = {}  # SQLite files that passed quick_check: (path, size, mtime)


def make_engine(url: URL, path: Path | None, location: str, busy_timeout_s: float, create: bool = True) -> Engine:
    """An engine for ``url``: PostgreSQL through psycopg 3; SQLite in WAL mode with a busy timeout,
    ``BEGIN IMMEDIATE`` for connections marked ``archcast_write`` (see :class:`archcast.store.Store`)."""
    if url.get_backend_name() != "sqlite":
        try:
            return create_engine(url, pool_size=8, max_overflow=16, pool_recycle=3600)  # no pre-ping: a round trip per checkout
        except ImportError as e:  # the driver is an optional dependency of SQLAlchemy
            raise StoreError(f"database {location} needs the PostgreSQL driver {url.get_driver_name()!r} "
                             f"({e}); install it: pip install 'psycopg[binary]'") from None
    kw: dict[str, Any] = {"connect_args": {"timeout": busy_timeout_s, "check_same_thread": False}}
    if path is None:  # in-memory: one shared connection, else every connection is a new DB
        kw.update(poolclass=StaticPool)
    else:
        if path.is_dir():
            raise StoreError(f"database {location} is a directory; give a file path")
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"database {location}: cannot create its directory: {e}") from None
    engine = create_engine(url, **kw)
    timeout_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # archcast emits BEGIN itself (see _on_begin)
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cur.execute("PRAGMA foreign_keys = ON")
            if path is not None:
                cur.execute("PRAGMA journal_mode = WAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # writers take the write lock up front: no deadlock between two upgrading readers
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("archcast_write") else "BEGIN")

    return engine


@contextmanager
def guard(location: str, busy_timeout_s: float, action: str) -> Iterator[None]:
    """Turn driver errors into store errors that name the database."""
    try:
        yield
    except (DBAPIError, sqlite3.Error) as e:
        orig = getattr(e, "orig", None) or e
        msg = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        low = msg.lower()
        if "locked" in low or "busy" in low:
            raise StoreLockedError(
                f"database {location} is locked by another process (waited {busy_timeout_s:g} s) "
                f"while {action}; retry when the other writer is done, or raise busy_timeout_s") from None
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            raise StoreCorruptError(
                f"database {location} is not a readable SQLite database ({msg}); it was left untouched: "
                "move it away or pass another --db / ARCHCAST_DB") from None
        if isinstance(e, IntegrityError):
            raise
        raise StoreError(f"database {location}: error while {action}: {msg}") from None


def quick_check(engine: Engine, path: Path, location: str) -> None:
    """``PRAGMA quick_check`` of the SQLite file, once per process and (size, mtime)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return  # a new database
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _CHECKED:
        return
    try:
        with engine.connect() as conn, conn.begin():
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
    except DBAPIError as e:  # a page so damaged that the check itself stops: damaged all the same
        msg = (str(e.orig).strip().splitlines() or [type(e.orig).__name__])[0]
        if not any(w in msg.lower() for w in ("malformed", "corrupt")):
            raise
        rows = [msg]
    if rows != ["ok"]:
        detail = " ".join("; ".join(str(r) for r in rows[:3]).replace("*** in database main ***", "").split())
        raise StoreCorruptError(
            f"database {location} is damaged (quick_check: {detail[:200]}); it was left untouched: "
            "restore it from a copy, or move it away and pass another --db / ARCHCAST_DB")
    _CHECKED[key] = True


__all__ = ["guard", "make_engine", "quick_check"]
