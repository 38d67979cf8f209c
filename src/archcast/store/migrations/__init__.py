"""Alembic migrations of the measurement store (see :mod:`archcast.store.migrate`)."""
