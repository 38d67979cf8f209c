"""Alembic environment of the measurement store.

Run from :mod:`archcast.store.migrate`, which passes an open connection (inside the caller's
transaction) as ``config.attributes["connection"]``; no ``alembic.ini`` is needed. For the
``alembic`` command line, set ``sqlalchemy.url`` in the config instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from archcast.store.schema import Base

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (or use python -m archcast.store.migrate)")
    with create_engine(url).begin() as conn:
        _run(conn)
