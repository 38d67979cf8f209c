"""The prediction side of ``archcast serve``: a worker pool, parsed graphs cached by content hash,
predictions cached by (graph fingerprint, predictor), and the store lookup done fresh per request.

* Parsing an upload (ONNX shape inference, folding) costs far more than predicting it, and teams
  upload the same files again and again: graphs are kept in an LRU keyed by the SHA-256 of the
  bytes (plus the batch size); a zoo sample by (family, seed, batch size).
* A prediction is a pure function of the graph and the checkpoint, so it is cached too; the
  ``measured`` field is not (it is read from the store on every request).
* Concurrent requests for one key wait for the first one (single flight) instead of parsing it
  N times. Errors are not cached.
* The store lookup of a request is remembered for ``measured_ttl_s`` (default 1 s; pushes to this
  server forget it at once): a measurement written by another process shows within that time.
* The store's counts (``/v1/store``, ``/v1/platforms``) are kept for ``summary_ttl_s`` (default
  5 s) and refreshed in the background, so no request waits for the aggregate.
* Store queries and pushes run in a separate pool of :data:`IO_THREADS` (they wait on the database).
* Predictions run in a thread pool of ``threads`` workers (torch with one intra-op thread each,
  so the pool and torch do not oversubscribe the cores); predictors are loaded once per platform
  (:func:`archcast.service.predict.load_predictor` keeps them).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Hashable

from archcast.errors import InvalidInputError
from archcast.graph.ir import NetGraph

MAX_BATCH = 4096
PREDICTOR_LOOKUP_TTL_S = 10.0
IO_THREADS = 8  # store queries and pushes in flight at once (the PostgreSQL pool holds 8 + 16 overflow)  # a predictor made by `archcast adapt` shows up within this
MAX_SEED = 2 ** 31 - 1


class Memo:
    """A thread-safe LRU of values computed once per key; concurrent callers of a key share one
    computation (the first caller runs ``make``, the others wait on its future)."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._d: OrderedDict[Hashable, Future] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            fut = self._d.get(key)
            owner = fut is None
            if owner:
                fut = self._d[key] = Future()
                self.misses += 1
                while len(self._d) > self.size:
                    self._d.popitem(last=False)
            else:
                self._d.move_to_end(key)
                self.hits += 1
        if owner:
            try:
                fut.set_result(make())
            except BaseException as e:
                fut.set_exception(e)
                with self._lock:
                    if self._d.get(key) is fut:
                        del self._d[key]
        return fut.result()

    def __len__(self) -> int:
        return len(self._d)


def batch_input_shapes(data: bytes, batch_size: int) -> dict[str, list[int]]:
    """``{input: shape}`` with the first dimension of every graph input set to ``batch_size``."""
    from google.protobuf.message import DecodeError

    from archcast.frontends.onnx_proto import pb

    model = pb().ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise InvalidInputError(f"the upload is not an ONNX model (protobuf: {str(e).splitlines()[0][:200]})") from None
    inits = {t.name for t in model.graph.initializer}
    shapes: dict[str, list[int]] = {}
    for inp in model.graph.input:
        if inp.name in inits or not inp.type.HasField("tensor_type"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
                for d in inp.type.tensor_type.shape.dim]
        if not dims:
            continue
        dims[0] = batch_size
        if any(d < 1 for d in dims[1:]):
            raise InvalidInputError(f"input {inp.name!r} has dynamic dimensions besides the batch ({dims}); "
                                    "export the model with static shapes")
        shapes[inp.name] = dims
    return shapes


class PredictionEngine:
    """Predictions for the HTTP app (see the module docstring). ``store`` may be None."""

    def __init__(self, store: Any, *, threads: int, cache_size: int = 256, measured_ttl_s: float = 1.0,
                 summary_ttl_s: float = 5.0) -> None:
        self.store = store
        self.measured_ttl_s = float(measured_ttl_s)
        self.summary_ttl_s = float(summary_ttl_s)
        self._summary: tuple[dict[str, Any] | None, float, bool] = (None, 0.0, False)  # value, when, refreshing
        self._summary_lock = threading.Lock()
        self._measured: dict[tuple[str, str, int], tuple[dict[str, Any] | None, float]] = {}
        self.threads = int(threads)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="archcast-predict")
        self.io_pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="archcast-store")
        self.graphs = Memo(cache_size)
        self.predictions = Memo(cache_size)
        self.scatters = Memo(16)
        self._dirs: dict[str | None, tuple[Any, float]] = {}  # platform -> (checkpoint dir, when looked up)

    def start(self, platforms: list[str] | None = None) -> None:
        """Set torch to one intra-op thread per worker and load the given platforms' predictors."""
        from archcast.service.predict import load_predictor
        from archcast.service.checkpoints import resolve_predictor_dir

        import torch

        torch.set_num_threads(1)
        for p in platforms or []:
            load_predictor(path=resolve_predictor_dir(p))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.io_pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the prediction pool (CPU-bound work)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def run_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the store pool: queries and pushes wait on the database, not on the CPU,
        so more of them run at once than there are cores."""
        return await asyncio.get_running_loop().run_in_executor(self.io_pool, fn, *args)

    # ------------------------------------------------------------------ graphs
    def upload_graph(self, data: bytes, name: str, batch_size: int | None) -> tuple[NetGraph, str]:
        """``(graph, fingerprint)`` of ONNX ``data`` (cached by content hash and batch size)."""
        from archcast.frontends import load_graph

        key = ("onnx", hashlib.sha256(data).hexdigest(), batch_size)

        def make() -> tuple[NetGraph, str]:
            shapes = batch_input_shapes(data, batch_size) if batch_size is not None else None
            g = load_graph(bytes(data), input_shapes=shapes or None, name=name)
            return g, g.fingerprint()  # hashing a big graph takes milliseconds: once

        return self.graphs.get(key, make)

    def sample_graph(self, family: str, seed: int, batch_size: int | None) -> tuple[NetGraph, str]:
        """``(graph, fingerprint)`` of zoo sample (family, seed) at ``batch_size`` (cached)."""
        from archcast.frontends import load_graph
        from archcast.zoo.base import export_sample, get_family

        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InvalidInputError(f"seed must be an integer 0..{MAX_SEED}; got {seed!r}")
        batch = batch_size or 1
        sample = get_family(family).sample(seed)  # an unknown family lists the valid ones

        def make() -> tuple[NetGraph, str]:
            g = load_graph(export_sample(sample, batch_size=batch), name=sample.key)
            return g, g.fingerprint()

        return self.graphs.get(("zoo", family, seed, batch), make)

    # ------------------------------------------------------------------ predictions
    def predict(self, graph_fp: tuple[NetGraph, str], platform: str | None, source: str) -> dict[str, Any]:
        """The JSON of ``archcast predict --format json`` for ``(graph, fingerprint)``, ``measured`` read now."""
        from archcast.service.predict import predict_graph

        directory = self._predictor_dir(platform)
        graph, fp = graph_fp
        cached = self.predictions.get((fp, str(directory), platform),
                                      lambda: predict_graph(graph, directory, platform=platform, store=None).to_dict())
        out = dict(cached)
        out["graph"] = {**cached["graph"], "source": source}
        pid = cached["platform_id"]
        out["measured"] = self.measured(fp, pid, int(cached["graph"]["batch_size"]))
        return out

    def measured(self, fp: str, platform_id: str | None, batch_size: int) -> dict[str, Any] | None:
        """The ``measured`` field of archcast.service.predict: the store's current ok measurement,
        re-read when older than ``measured_ttl_s`` (this server's own pushes clear it at once)."""
        if self.store is None or platform_id is None:
            return None
        key, now = (fp, platform_id, batch_size), time.monotonic()
        hit = self._measured.get(key)
        if hit is not None and now - hit[1] < self.measured_ttl_s:
            return hit[0]
        value = self.store.current_latency(fp, platform_id, batch_size)
        if self.measured_ttl_s > 0:
            if len(self._measured) >= 4096:
                self._measured.clear()
            self._measured[key] = (value, now)
        return value

    def summary(self) -> dict[str, Any]:
        """``store.stats()`` (counts per platform and family: an aggregate over every row, ~0.4 s at
        100k measurements on SQLite), served from memory and refreshed in the background once older
        than ``summary_ttl_s``; only the first call waits. ``summary_ttl_s = 0``: always fresh."""
        if self.summary_ttl_s <= 0:
            return self.store.stats()
        with self._summary_lock:
            value, at, refreshing = self._summary
            stale = value is None or time.monotonic() - at > self.summary_ttl_s
            start = stale and not refreshing and value is not None
            if start:
                self._summary = (value, at, True)
        if value is None:
            fresh = self.store.stats()
            with self._summary_lock:
                self._summary = (fresh, time.monotonic(), False)
            return fresh
        if start:
            self.io_pool.submit(self._refresh_summary)
        return value

    def _refresh_summary(self) -> None:
        try:
            fresh = self.store.stats()
        except Exception:  # noqa: BLE001 - keep serving the old counts; the next call retries
            with self._summary_lock:
                self._summary = (self._summary[0], self._summary[1], False)
            return
        with self._summary_lock:
            self._summary = (fresh, time.monotonic(), False)

    def forget_measured(self) -> None:
        """Drop remembered store lookups (after a push to this server)."""
        self._measured.clear()

    def _predictor_dir(self, platform: str | None) -> Any:
        """The platform's checkpoint directory, looked up on disk at most every few seconds."""
        from archcast.service.checkpoints import resolve_predictor_dir

        now = time.monotonic()
        hit = self._dirs.get(platform)
        if hit is None or now - hit[1] > PREDICTOR_LOOKUP_TTL_S:
            hit = self._dirs[platform] = (resolve_predictor_dir(platform), now)
        return hit[0]

    def scatter(self, platform: str, limit: int) -> dict[str, Any]:
        """Predicted vs measured latency of the newest ``limit`` current ok measurements of ``platform``
        that have a stored IR (cached until the platform gets a new measurement)."""
        from archcast.service.checkpoints import available_platforms
        from archcast.service.predict import predict_graphs

        pid = self.store.resolve_platform(platform)
        recs = [r for r in self.store.measurements(platform=pid, status="ok", limit=limit, newest_first=True)
                if not r.fingerprint.startswith(("sample-", "onnx-"))]
        name = recs[0].platform_name if recs else platform
        have = available_platforms()
        key = (pid, recs[0].id if recs else 0, len(recs))

        def make() -> dict[str, Any]:
            predicted: list[float | None] = [None] * len(recs)
            if name in have and recs:
                graphs = [self.store.graph(r.fingerprint) for r in recs]
                predicted = [float(x) for x in predict_graphs(graphs, have[name])]
            points = [{"fingerprint": r.fingerprint, "name": r.name, "family": r.family,
                       "batch_size": r.batch_size, "measured_ms": r.latency_ms_median, "predicted_ms": p}
                      for r, p in zip(recs, predicted)]
            return {"platform": name, "platform_id": pid, "has_predictor": name in have, "points": points}

        return self.scatters.get(key, make)


__all__ = ["MAX_BATCH", "MAX_SEED", "Memo", "PredictionEngine", "batch_input_shapes"]
