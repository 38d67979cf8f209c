"""``archcast serve``: the HTTP API and web page over one store and the platform predictors.

API (JSON; errors are ``{"detail": "<one line>"}``; OpenAPI docs at ``/docs``):

==========================  =================================================================
``POST /v1/predict``        multipart: ``file`` (an .onnx, optionally gzipped) or ``family`` +
                            ``seed`` (a zoo sample); ``platform``, ``batch_size`` optional →
                            the JSON of ``archcast predict --format json``, ``measured`` filled
                            from the store when it holds this graph on that platform
``GET /v1/platforms``       platforms with a predictor and/or measurements
``GET /v1/measurements``    filters ``fingerprint``, ``platform``, ``family``, ``status``,
                            ``history``; pages of ``limit`` rows after ``after`` (an id)
``GET /v1/graphs/{fp}``     a stored graph: provenance, size, op counts, measurement history
``GET /v1/store``           counts per platform and family
``GET /v1/scatter``         predicted vs measured latency of a platform's stored graphs
``POST /v1/measurements``   device agents push measurements (write token; ``push_id`` makes a
                            retried push a no-op)
``POST /v1/measurements/missing``  which of these ``push_id`` the store lacks (write token)
``GET /healthz``            liveness, store location, predictors
==========================  =================================================================

Pages (``/``, ``/store``, ``/graphs/{fp}``) are Jinja2 templates plus one script that calls the
API; everything they need ships in the package.
"""

# no `from __future__ import annotations`: FastAPI reads the route annotations at definition time

import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from archcast.errors import ArchcastError, InvalidInputError, UnknownNameError
from archcast.service.settings import ServeSettings

HERE = Path(__file__).resolve().parent
FINGERPRINT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_PAGE = 500
MAX_PUSH_ITEMS = 500


def _status_of(e: Exception) -> int:
    from archcast.store.errors import StoreError, StoreInputError

    if hasattr(e, "status"):
        return int(e.status)
    if isinstance(e, StoreInputError):
        return 422
    if isinstance(e, StoreError):
        return 503
    if isinstance(e, UnknownNameError):
        return 404
    if isinstance(e, InvalidInputError):
        return 400
    return 500 if not isinstance(e, ArchcastError) else 400


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())[:2000]


def create_app(settings: ServeSettings | None = None, *, store: Any = None) -> Any:
    """The FastAPI app (wrapped in the upload-size limit). ``store``: an open Store to use instead
    of opening ``settings.db`` (which is created when missing: the server owns its store)."""
    from fastapi import FastAPI, File, Form, Query, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from fastapi.templating import Jinja2Templates

    from archcast._version import __version__
    from archcast.service import auth
    from archcast.service.engine import MAX_BATCH, PredictionEngine
    from archcast.service.uploads import BodyLimit, UploadError, model_bytes
    from archcast.store import Store

    settings = settings or ServeSettings.from_env()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Any):
        st = store if store is not None else Store(settings.db)
        engine = PredictionEngine(st, threads=settings.prediction_threads, cache_size=settings.cache_size,
                                  measured_ttl_s=settings.measured_ttl_s, summary_ttl_s=settings.summary_ttl_s)
        from archcast.service.checkpoints import DEFAULT_PLATFORM, available_platforms

        await engine.run(engine.start, [p for p in available_platforms() if p == DEFAULT_PLATFORM])
        state.update(store=st, engine=engine)
        try:
            yield
        finally:
            engine.close()
            if store is None:
                st.close()

    app = FastAPI(title="archcast", version=__version__, lifespan=lifespan,
                  description="Latency of a neural network on a platform: the measurement when the team's store "
                              "has one, a prediction otherwise.")
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    # ------------------------------------------------------------------ errors: one line, a 4xx for the user's
    @app.exception_handler(ArchcastError)
    async def _archcast_error(_req: Request, e: ArchcastError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if getattr(e, "status", None) == 401 else None
        return JSONResponse({"detail": _one_line(str(e))}, status_code=_status_of(e), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_req: Request, e: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in err.get('loc', ())[1:]) or 'request'}: {err.get('msg')}"
                 for err in e.errors()[:3]]
        return JSONResponse({"detail": _one_line("; ".join(parts))}, status_code=422)

    def _read(request: Request) -> None:
        auth.check(state["store"], request.headers.get("authorization"), "read",
                   read_open=settings.read_access == "open")

    def _write(request: Request) -> str | None:
        return auth.check(state["store"], request.headers.get("authorization"), "write", read_open=False)

    # ------------------------------------------------------------------ API
    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        from archcast.service.checkpoints import available_platforms

        eng = state["engine"]
        return {"status": "ok", "version": __version__, "store": state["store"].location.strip("'"),
                "predictors": sorted(available_platforms()), "threads": eng.threads,
                "cache": {"graphs": len(eng.graphs), "predictions": len(eng.predictions),
                          "hits": eng.predictions.hits, "misses": eng.predictions.misses}}

    @app.post("/v1/predict", tags=["predict"])
    async def predict(request: Request, file: UploadFile | None = File(None, description="an .onnx file (or .onnx.gz)"),
                      family: str | None = Form(None, description="zoo family (instead of a file)"),
                      seed: int | None = Form(None, description="zoo seed"),
                      platform: str | None = Form(None, description="platform name (default ort-cpu-1t)"),
                      batch_size: int | None = Form(None, ge=1, le=MAX_BATCH)) -> JSONResponse:
        """Latency of an uploaded ONNX model or a zoo sample; the same JSON as ``archcast predict --format json``."""
        _read(request)
        eng = state["engine"]
        platform = platform or None
        if file is not None and (family or seed is not None):
            raise InvalidInputError("send either a file or family + seed, not both")
        if file is not None:
            data = model_bytes(await file.read(), settings.max_upload_bytes)
            name = Path(file.filename or "upload.onnx").name[:200] or "upload.onnx"
            stem = re.sub(r"\.onnx(\.gz)?$", "", name, flags=re.I) or "upload"

            def work() -> dict[str, Any]:  # one trip to the pool: graph (cached) + prediction (cached) + store
                return eng.predict(eng.upload_graph(data, stem, batch_size), platform, name)
        elif family:
            if seed is None:
                raise InvalidInputError("a zoo sample needs family and seed")

            def work() -> dict[str, Any]:
                return eng.predict(eng.sample_graph(family, seed, batch_size), platform, f"{family}/{seed}")
        else:
            raise InvalidInputError("send a model: a multipart 'file' (.onnx), or 'family' and 'seed' of a zoo sample")
        return _json_response(await eng.run(work))

    @app.get("/v1/platforms", tags=["store"])
    async def platforms(request: Request) -> dict[str, Any]:
        """Platforms with a latency predictor and/or measurements in the store."""
        _read(request)
        return await state["engine"].run_io(_platforms, state["store"], state["engine"].summary)

    @app.get("/v1/store", tags=["store"])
    async def store_summary(request: Request) -> dict[str, Any]:
        """Counts of graphs and measurements per platform and per family; the zoo families."""
        _read(request)
        from archcast.zoo.base import FAMILIES
        from archcast.zoo import load_builtin_families

        stats = dict(await state["engine"].run_io(state["engine"].summary))
        load_builtin_families()
        stats.pop("file_bytes", None)
        return {**stats, "zoo_families": sorted(FAMILIES.names())}

    @app.get("/v1/measurements", tags=["store"])
    async def measurements(request: Request, fingerprint: str | None = None, platform: str | None = None,
                           family: str | None = None, status: str | None = Query(None, pattern="^(ok|failed)$"),
                           history: bool = False, limit: int = Query(100, ge=1, le=MAX_PAGE),
                           after: int | None = Query(None, ge=0)) -> dict[str, Any]:
        """A page of measurements (oldest first); pass ``next_after`` as ``after`` for the next page."""
        _read(request)
        if fingerprint is not None and not FINGERPRINT.match(fingerprint):
            raise InvalidInputError(f"fingerprint must be 1-64 letters, digits, - or _; got {fingerprint[:80]!r}")

        def page() -> dict[str, Any]:
            rows = state["store"].measurements(platform=platform or None, family=family or None,
                                               fingerprint=fingerprint, status=status, current_only=not history,
                                               after_id=after, limit=limit + 1)
            more = len(rows) > limit
            rows = rows[:limit]
            return {"items": [r.to_dict() for r in rows], "next_after": rows[-1].id if more else None}

        return await state["engine"].run_io(page)

    @app.get("/v1/graphs/{fingerprint}", tags=["store"])
    async def graph(request: Request, fingerprint: str) -> dict[str, Any]:
        """A stored graph: provenance, size, op counts and every measurement of it (history included)."""
        _read(request)
        if not FINGERPRINT.match(fingerprint):
            raise UploadError(404, "no such graph (a fingerprint is 1-64 letters, digits, - or _)")

        def info() -> dict[str, Any]:
            st = state["store"]
            g = st.graph_info(fingerprint)
            if g is None:
                raise UploadError(404, f"the store has no graph {fingerprint!r}")
            if g["has_ir"]:
                g["op_counts"] = st.graph(fingerprint).op_counts()
            rows = st.measurements(fingerprint=fingerprint, current_only=False, limit=MAX_PAGE)
            return {**g, "measurements": [r.to_dict() for r in rows]}

        return await state["engine"].run_io(info)

    @app.get("/v1/scatter", tags=["store"])
    async def scatter(request: Request, platform: str, limit: int = Query(300, ge=1, le=2000)) -> dict[str, Any]:
        """Predicted vs measured latency of the platform's newest measured graphs."""
        _read(request)
        return await state["engine"].run(state["engine"].scatter, platform, limit)

    @app.post("/v1/measurements", tags=["agents"], status_code=201)
    async def push(request: Request) -> dict[str, Any]:
        """Store measurements from a device agent: ``{"items": [{"fingerprint", "graph" (NetGraph JSON,
        when the store may lack it), "provenance", "platform" (Platform fields), "batch_size",
        "values" (measurement columns, "status" required), "push_id"}]}``."""
        who = _write(request)
        body = await _json(request)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_PUSH_ITEMS:
            raise InvalidInputError(f"the body must be {{\"items\": [...]}} with 1 to {MAX_PUSH_ITEMS} items")

        def store_them() -> list[tuple[int, bool]]:
            return state["store"].ingest([_push_item(i, it, who) for i, it in enumerate(items)])

        results = await state["engine"].run_io(store_them)
        state["engine"].forget_measured()
        return {"results": [{"id": i, "created": c} for i, c in results],
                "created": sum(c for _, c in results)}

    @app.post("/v1/measurements/missing", tags=["agents"])
    async def missing(request: Request) -> dict[str, Any]:
        """Which of ``{"push_ids": [...]}`` the store does not hold yet (what an agent still has to push)."""
        _write(request)
        body = await _json(request)
        ids = body.get("push_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or len(ids) > 10_000 or not all(isinstance(i, str) for i in ids):
            raise InvalidInputError("the body must be {\"push_ids\": [strings]} with at most 10000 ids")
        have = await state["engine"].run_io(state["store"].known_push_ids, ids)
        return {"missing": [i for i in ids if i not in have]}

    # ------------------------------------------------------------------ pages
    def _page(request: Request, name: str, **ctx: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"version": __version__, "read_access": settings.read_access,
                                                          **ctx})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page_predict(request: Request) -> HTMLResponse:
        return _page(request, "predict.html", page="predict")

    @app.get("/store", response_class=HTMLResponse, include_in_schema=False)
    async def page_store(request: Request) -> HTMLResponse:
        return _page(request, "store.html", page="store")

    @app.get("/graphs/{fingerprint}", response_class=HTMLResponse, include_in_schema=False)
    async def page_graph(request: Request, fingerprint: str) -> HTMLResponse:
        if not FINGERPRINT.match(fingerprint):
            raise UploadError(404, "no such graph")
        return _page(request, "graph.html", page="graph", fingerprint=fingerprint)

    return BodyLimit(app, settings.max_upload_bytes)


def _json_response(body: Any, status_code: int = 200) -> Any:
    """JSON serialised by orjson when it is installed (a prediction is ~20 KB of floats)."""
    from fastapi.responses import JSONResponse, Response

    try:
        import orjson
    except ImportError:
        return JSONResponse(body, status_code=status_code)
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


async def _json(request: Any) -> Any:
    import json

    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"the body is not JSON ({e})") from None


def _push_item(i: int, it: Any, who: str | None) -> dict[str, Any]:
    """One pushed item as :meth:`Store.ingest` takes it (graph and platform parsed and validated)."""
    from archcast.graph.ir import NetGraph
    from archcast.profile.platform import Platform

    where = f"item {i}"
    if not isinstance(it, dict):
        raise InvalidInputError(f"{where}: must be an object")
    plat = it.get("platform")
    if not isinstance(plat, dict) or "name" not in plat:
        raise InvalidInputError(f"{where}: platform must be an object of Platform fields (name, backend, device, ...)")
    try:
        platform = Platform.from_dict(plat)
    except TypeError as e:
        raise InvalidInputError(f"{where}: platform: {e}") from None
    graph = it.get("graph")
    if graph is not None:
        if not isinstance(graph, dict):
            raise InvalidInputError(f"{where}: graph must be NetGraph JSON (an object)")
        graph = NetGraph.from_dict(graph)
    prov = it.get("provenance")
    if prov is not None and not isinstance(prov, dict):
        raise InvalidInputError(f"{where}: provenance must be an object")
    if prov and prov.get("seed") is not None and (isinstance(prov["seed"], bool) or not isinstance(prov["seed"], int)):
        raise InvalidInputError(f"{where}: provenance.seed must be an integer")
    values = it.get("values")
    if isinstance(values, dict) and who and not values.get("host"):
        values = {**values, "host": f"token:{who}"[:256]}
    return {"fingerprint": it.get("fingerprint"), "graph": graph, "provenance": prov, "platform": platform,
            "batch_size": it.get("batch_size"), "values": values, "push_id": it.get("push_id"),
            "source": "push"}


def _platforms(store: Any, summary: Any) -> dict[str, Any]:
    import json

    from archcast.profile.platform import Platform
    from archcast.service.checkpoints import available_platforms

    stats = summary()["per_platform"]
    out: dict[str, dict[str, Any]] = {}
    for p in store.platforms():
        s = stats.get(p.platform_id, {})
        out[p.platform_id] = {**p.to_dict(), "has_predictor": False, "measurements_ok": s.get("ok", 0),
                              "measurements_failed": s.get("failed", 0)}
    for name, d in available_platforms().items():
        try:
            fields = json.loads((d / "config.json").read_text()).get("platform") or {"name": name}
            p = Platform.from_dict(fields)
            pid = p.platform_id
        except (ValueError, TypeError, ArchcastError, OSError):
            p, pid = None, None
        if pid in out:
            out[pid]["has_predictor"] = True
        else:
            rec = p.to_dict() if p is not None else {"name": name, "platform_id": None}
            out[pid or name] = {**rec, "has_predictor": True, "measurements_ok": 0, "measurements_failed": 0}
    rows = sorted(out.values(), key=lambda r: (not r["has_predictor"], r["name"]))
    return {"platforms": rows}


def app_from_env() -> Any:
    """The app from ``ARCHCAST_*`` environment variables (what uvicorn's worker processes import)."""
    return create_app(ServeSettings.from_env())


__all__ = ["app_from_env", "create_app"]
