"""A device agent's side of ``archcast serve``: push a local store's measurements to a team server.

``archcast profile --push URL`` measures into the local store as always, then calls
:func:`push_store`: it computes a ``push_id`` for every current measurement of the platform
(SHA-256 of graph, platform, batch, time and values: the same row always gets the same id), asks
the server which ids it lacks (``POST /v1/measurements/missing``) and sends only those, in batches,
with the graph IR and provenance, so the server can store graphs it has never seen. Pushing twice
sends nothing the second time; a push cut short is finished by the next one.

The token comes from ``$ARCHCAST_TOKEN`` (a token with the ``write`` scope).
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from archcast.errors import ArchcastError, InvalidInputError

TOKEN_ENV = "ARCHCAST_TOKEN"
BATCH = 100


class PushError(ArchcastError):
    """The server refused a push or could not be reached."""


@dataclass
class PushReport:
    url: str
    current: int = 0
    already: int = 0
    pushed: int = 0
    skipped_stubs: int = 0

    def line(self) -> str:
        return (f"pushed {self.pushed} measurements to {self.url} ({self.already} already there, "
                f"{self.skipped_stubs} without a graph skipped, {self.current} current in the local store)")


def push_id(rec: Any) -> str:
    """A stable id of a measurement row (record fields that identify it), 32 hex digits."""
    blob = json.dumps([rec.fingerprint, rec.platform_id, rec.batch_size, rec.measured_at.isoformat(), rec.status,
                       rec.latency_ms_median, rec.latency_ms_min, rec.n_runs, rec.host], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _post(url: str, path: str, body: dict[str, Any], token: str | None, timeout_s: float) -> dict[str, Any]:
    req = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310 - the user's own server URL
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read()).get("detail", "")
        except (ValueError, AttributeError):
            detail = ""
        raise PushError(f"{url}{path}: HTTP {e.code}: {detail or e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise PushError(f"cannot reach {url}: {getattr(e, 'reason', e)}") from None


def push_store(url: str, store: Any, *, platform_id: str | None = None, token: str | None = None,
               timeout_s: float = 120.0, batch: int = BATCH) -> PushReport:
    """Push the current measurements of ``platform_id`` (all platforms if None) from ``store`` to the
    server at ``url`` (see the module docstring). Returns counts."""
    if not url.startswith(("http://", "https://")):
        raise InvalidInputError(f"--push needs an http(s):// URL of an archcast serve; got {url!r}")
    token = token or os.environ.get(TOKEN_ENV) or None
    recs = [r for r in store.measurements(platform=platform_id) if not r.fingerprint.startswith(("sample-", "onnx-"))]
    rep = PushReport(url=url, current=len(recs))
    rep.skipped_stubs = len(store.measurements(platform=platform_id)) - len(recs)
    ids = {push_id(r): r for r in recs}
    missing: list[str] = []
    keys = list(ids)
    for k in range(0, len(keys), 1000):
        missing += _post(url, "/v1/measurements/missing", {"push_ids": keys[k:k + 1000]}, token, timeout_s)["missing"]
    rep.already = len(recs) - len(missing)
    platforms = {p.platform_id: p.to_dict() for p in store.platforms()}
    for k in range(0, len(missing), batch):
        chunk = [ids[i] for i in missing[k:k + batch]]
        values = store.row_values([r.id for r in chunk])
        items = [{"fingerprint": r.fingerprint, "graph": store.graph(r.fingerprint).to_dict(),
                  "provenance": {"family": r.family, "seed": r.seed, "generator_version": r.generator_version,
                                 "generator_config": r.generator_config},
                  "platform": platforms[r.platform_id], "batch_size": r.batch_size, "values": values[r.id],
                  "push_id": pid}
                 for r, pid in zip(chunk, missing[k:k + batch])]
        rep.pushed += _post(url, "/v1/measurements", {"items": items}, token, timeout_s)["created"]
    return rep


__all__ = ["PushError", "PushReport", "push_id", "push_store"]
