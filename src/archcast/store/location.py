"""Where the measurement store is: the default location and URL parsing.

A location is a SQLAlchemy URL (``sqlite:///path``, ``postgresql://user@host/db``) or a plain file
path (SQLite). ``postgresql://`` means psycopg 3 (SQLAlchemy's own default driver is psycopg2).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from archcast.store.errors import StoreError

ENV_VAR = "ARCHCAST_DB"
DB_FILE = "archcast.db"
DIALECTS = ("sqlite", "postgresql")
PG_DRIVER = "psycopg"


def default_url() -> str:
    """The store location when none is given: ``$ARCHCAST_DB`` or the per-user data directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    import platformdirs

    return str(Path(platformdirs.user_data_dir("archcast")) / DB_FILE)


def to_url(location: str | Path) -> URL:
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


__all__ = ["DB_FILE", "DIALECTS", "ENV_VAR", "PG_DRIVER", "default_url", "to_url"]
