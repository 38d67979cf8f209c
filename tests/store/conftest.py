"""Store fixtures: one test body, two backends (SQLite and a real PostgreSQL server).

``pg_server`` starts Debian's PostgreSQL in a temporary directory once per test session
(:class:`archcast.store.pgserver.PgServer`; as root the server runs as ``postgres``) and stops it
at the end; without the server binaries or psycopg the PostgreSQL cases skip with the reason.
``store_url`` gives each test a fresh database: an SQLite file, or a new PostgreSQL database.
"""

from __future__ import annotations

import pytest

from archcast.store.pgserver import PgServer, missing_reason


@pytest.fixture(scope="session")
def pg_server():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = PgServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A fresh, empty store location on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("pg_server").create_database()
