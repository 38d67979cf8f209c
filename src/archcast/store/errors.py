"""Errors of the measurement store. Each message names the database (file or URL) and the fix."""

from __future__ import annotations

from archcast.errors import ArchcastError


class StoreError(ArchcastError):
    """The measurement database cannot be opened, read or written."""


class StoreInputError(StoreError, ValueError):
    """A value given to the store cannot be stored (bad pushed column, unknown graph or platform)."""


class StoreCorruptError(StoreError):
    """The database file is not an SQLite database, or it is damaged. It is left untouched."""


class StoreLockedError(StoreError):
    """Another process held the database lock for longer than the busy timeout."""


__all__ = ["StoreCorruptError", "StoreError", "StoreInputError", "StoreLockedError"]
