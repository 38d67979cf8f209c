"""Argument parsing shared by the command groups: shapes, ``--set`` overrides, positive counts."""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

from archcast.errors import InvalidInputError

DB_HELP = "database URL or SQLite file (default: $ARCHCAST_DB, else the per-user data directory)"


def parse_input_shapes(items: Sequence[str] | None) -> dict[str, tuple[int, ...]] | None:
    """``["input=1,3,224,224"]`` -> ``{"input": (1, 3, 224, 224)}`` with one-line errors."""
    if not items:
        return None
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d <= 0 for d in shape):
            raise InvalidInputError(f"--input-shape {item!r} is not NAME=D1,D2,... with positive integers")
        out[name] = shape
    return out


def parse_set(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``["archcast:epochs=3"]`` -> ``{"archcast": {"epochs": 3}}`` (values parsed as JSON when they can be)."""
    kw: dict[str, dict[str, Any]] = {}
    for item in items or []:
        name, _, rest = item.partition(":")
        key, eq, val = rest.partition("=")
        if not eq or not name or not key:
            raise InvalidInputError(f"--set {item!r} is not PREDICTOR:KEY=VALUE")
        try:
            value: Any = json.loads(val)
        except json.JSONDecodeError:
            value = val
        kw.setdefault(name, {})[key] = value
    return kw


def positive(name: str, value: int) -> int:
    """``value`` if >= 1, else a one-line error naming the flag."""
    if value < 1:
        raise InvalidInputError(f"{name} must be >= 1; got {value}")
    return value


def help_of(parser: argparse.ArgumentParser) -> Any:
    """A command function that prints ``parser``'s help and exits 2 (a group called without a verb)."""
    return lambda _args: (parser.print_help(), 2)[1]
