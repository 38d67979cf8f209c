"""API tokens of ``archcast serve`` in the store: names, scopes and SHA-256 digests (never tokens).

:class:`TokenMethods` is mixed into :class:`archcast.store.Store`; making and checking tokens is
:mod:`archcast.service.auth`'s business.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from archcast.store.errors import StoreError
from archcast.store.records import utcnow
from archcast.store.schema import TOKEN_SCOPES, ApiTokenRow


class TokenMethods:
    """``add_token``, ``token``, ``tokens``, ``revoke_token`` of a Store (uses its ``_tx``/``_write``)."""

    location: str
    _tx: Any
    _write: Any

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
            s.add(ApiTokenRow(token_sha256=token_sha256, name=name, scope=scope, created=utcnow()))

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


__all__ = ["TokenMethods"]
