"""Measurements pushed by device agents (``archcast serve``): each item checked, each value typed
against its column, before :meth:`archcast.store.Store.ingest` writes anything."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text

from archcast.profile.platform import Platform
from archcast.store.errors import StoreInputError
from archcast.store.records import parse_time
from archcast.store.schema import STATUSES, MeasurementRow

# measurement columns a pushed row may set (everything but keys and bookkeeping); new columns join by themselves
PUSHABLE_COLUMNS = tuple(c.name for c in MeasurementRow.__table__.columns
                         if c.name not in {"id", "graph_fingerprint", "platform_id", "batch_size", "is_current",
                                           "push_id", "source"})


def prepare_push(i: int, item: Mapping[str, Any]) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """Item ``i`` of a push checked, and its measurement values typed (see :meth:`Store.ingest`)."""
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
    values = {k: column_value(where, k, cols[k], v) for k, v in raw.items()}
    if values.get("measured_at") is None:
        values.pop("measured_at", None)  # the store's clock
    return item, values


def column_value(where: str, name: str, col: Any, v: Any) -> Any:
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
            return parse_time(str(v))
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


__all__ = ["PUSHABLE_COLUMNS", "column_value", "prepare_push"]
