"""API tokens of ``archcast serve``: random secrets shown once, stored as SHA-256 digests.

A token is ``ac_`` + 43 URL-safe characters (256 random bits), so a plain SHA-256 is enough (no
salt or slow hash: nothing to brute-force). Requests send ``Authorization: Bearer <token>``.
Missing or unknown token: 401; a ``read`` token on a write: 403.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from archcast.errors import ArchcastError

PREFIX = "ac_"


class AuthError(ArchcastError):
    """A request without the access it needs; ``status`` is 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The stored form of ``token``: SHA-256 hex digest."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(store: Any, name: str, scope: str) -> str:
    """Make a token, store its digest under ``name`` with ``scope``; returns the token (shown once)."""
    token = new_token()
    store.add_token(name, scope, token_digest(token))
    return token


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header (None when absent or another scheme)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def check(store: Any, header: str | None, need: str, *, read_open: bool) -> str | None:
    """The token's name when the request may go on, else :class:`AuthError` (401/403).

    ``need`` is ``read`` or ``write``; ``read_open`` lets reads through without a token.
    """
    if need == "read" and read_open:
        return None
    token = bearer(header)
    what = "writing" if need == "write" else "reading"
    if token is None:
        raise AuthError(401, f"{what} needs a token: send 'Authorization: Bearer <token>' "
                             f"(make one with: archcast serve --new-token NAME --scope {need})")
    found = store.token(token_digest(token))
    if found is None:
        raise AuthError(401, "the token is not known to this server (revoked, or for another store)")
    name, scope = found
    if need == "write" and scope != "write":
        raise AuthError(403, f"token {name!r} is read-only; writing needs a token with scope write")
    return name


__all__ = ["AuthError", "bearer", "check", "create_token", "new_token", "token_digest"]
