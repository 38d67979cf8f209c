"""The HTTP API of ``archcast serve`` (in-process, FastAPI's TestClient): the predict JSON equals
the CLI's, the stored measurement beside it, caching, refused uploads, access, pushes and pages."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from archcast.graph.ir import NetGraph, Node  # noqa: E402
from archcast.profile import Measurement, Platform  # noqa: E402
from archcast.service.app import create_app  # noqa: E402
from archcast.service.auth import create_token  # noqa: E402
from archcast.service.settings import ServeSettings  # noqa: E402
from archcast.store import Store  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "archcast" / "examples" / "resnet18.onnx"
TEST_PLATFORM = Platform("test-cpu", device="test-device", runtime_version="0")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A TestClient over a fresh SQLite store, a write and a read token, and the example's bytes."""
    store = Store(tmp_path_factory.mktemp("serve") / "team.db")
    write, read = create_token(store, "agent", "write"), create_token(store, "viewer", "read")
    with TestClient(create_app(ServeSettings(max_upload_mb=5, threads=2, measured_ttl_s=0, summary_ttl_s=0), store=store)) as client:
        yield client, store, {"write": write, "read": read}


def _hdr(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _upload(client, data: bytes, name: str = "resnet18.onnx", **form):
    return client.post("/v1/predict", files={"file": (name, data)}, data={k: str(v) for k, v in form.items()})


def tiny(i: int) -> NetGraph:
    w = i + 1
    return NetGraph([Node("conv", "Conv", {"kernel_shape": (3, 3)}, [(1, 3, 8, 8)], [(1, w, 8, 8)], flops=10 * w),
                     Node("relu", "Relu", {}, [(1, w, 8, 8)], [(1, w, 8, 8)])], [(0, 1)], name=f"g{i}").validate()


# ---------------------------------------------------------------------------- predict
def test_predict_returns_the_cli_json_and_the_stored_measurement(served):
    from archcast.frontends import load_graph
    from archcast.service.predict import load_predictor, predict_graph

    client, store, _ = served
    data = EXAMPLE.read_bytes()
    r = _upload(client, data)
    assert r.status_code == 200, r.text
    got = r.json()
    want = predict_graph(load_graph(str(EXAMPLE)), platform=None, store=None).to_dict()
    assert set(got) == set(want)  # the keys of `archcast predict --format json`
    assert got["latency_ms"] == pytest.approx(want["latency_ms"], rel=1e-6) and got["latency_ms"] > 1
    assert got["low_ms"] < got["latency_ms"] < got["high_ms"] and got["platform"] == "ort-cpu-1t"
    assert [o["op_type"] for o in got["operators"]] == [o["op_type"] for o in want["operators"]]
    assert sum(o["ms"] for o in got["operators"]) == pytest.approx(got["latency_ms"], rel=1e-6)
    assert got["graph"]["fingerprint"] == want["graph"]["fingerprint"] and got["graph"]["source"] == "resnet18.onnx"
    assert got["measured"] is None

    # a device measured this very graph on the predictor's platform: it appears beside the prediction
    cfg = load_predictor().checkpoint_config_["platform"]
    platform = Platform.from_dict(cfg)
    fp = store.add_graph(load_graph(str(EXAMPLE)))
    store.record(fp, platform, Measurement.from_times([33.0, 34.0, 35.0], warmup_runs=1, batch_size=1))
    again = _upload(client, data).json()
    assert again["measured"]["latency_ms"] == pytest.approx(34.0) and again["measured"]["n_runs"] == 3
    assert again["latency_ms"] == got["latency_ms"]


def test_repeated_uploads_are_parsed_once(served):
    client, _, _ = served
    data = EXAMPLE.read_bytes()
    _upload(client, data)
    before = client.get("/healthz").json()["cache"]
    for _ in range(3):
        assert _upload(client, data, name="other-name.onnx").status_code == 200
    after = client.get("/healthz").json()["cache"]
    assert after["hits"] == before["hits"] + 3 and after["misses"] == before["misses"]
    gz = _upload(client, gzip.compress(data), name="resnet18.onnx.gz")  # gzip uploads are accepted
    assert gz.status_code == 200 and gz.json()["graph"]["source"] == "resnet18.onnx.gz"


def test_batch_size_and_zoo_samples(served):
    client, _, _ = served
    one = _upload(client, EXAMPLE.read_bytes()).json()
    four = _upload(client, EXAMPLE.read_bytes(), batch_size=4).json()
    assert four["graph"]["batch_size"] == 4 and 3.5 * one["graph"]["flops"] < four["graph"]["flops"] <= 4 * one["graph"]["flops"]
    assert four["latency_ms"] > one["latency_ms"]
    z = client.post("/v1/predict", data={"family": "nb201", "seed": "3"})
    assert z.status_code == 200, z.text
    assert z.json()["graph"]["source"] == "nb201/3" and z.json()["latency_ms"] > 0


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.onnx", b"\0" * (20 << 20))
    return buf.getvalue()


def _external_data_model() -> bytes:
    """A Reshape whose shape tensor claims to live in ./leak.bin (the audit's file-read attack)."""
    shape = TensorProto(name="shape", data_type=TensorProto.INT64, dims=[2])
    shape.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "leak.bin"), ("offset", "0"), ("length", "16")):
        shape.external_data.add(key=k, value=v)
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "leak",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("case, status, reason", [
    ("not onnx", 400, "not a readable ONNX model"),
    ("truncated", 400, "not a readable ONNX model"),
    ("empty", 400, "empty"),
    ("zip", 415, "zip archive"),
    ("gzip bomb", 413, "compression bomb"),
    ("oversized", 413, "limit is 5.0 MB"),
    ("file and family", 400, "either a file or family"),
    ("nothing", 400, "send a model"),
    ("unknown platform", 400, "no latency predictor for platform 'nope'"),
    ("unknown family", 404, "nope"),
    ("bad batch", 422, "batch_size"),
])
def test_bad_uploads_get_a_4xx_with_one_line(served, case, status, reason):
    client, _, _ = served
    data = EXAMPLE.read_bytes()
    if case == "oversized":
        r = _upload(client, b"\x08" * (6 << 20))
    elif case in ("file and family", "nothing", "unknown family"):
        form = {"file and family": {"family": "nb201", "seed": "1"}, "nothing": {},
                "unknown family": {"family": "nope", "seed": "1"}}[case]
        files = {"file": ("m.onnx", data)} if case == "file and family" else None
        r = client.post("/v1/predict", files=files, data=form)
    else:
        body = {"not onnx": b"<html>hello</html>" * 50, "truncated": data[: len(data) // 2], "empty": b"",
                "zip": _zip_bomb(), "gzip bomb": gzip.compress(b"\0" * (40 << 20)), "unknown platform": data,
                "bad batch": data}[case]
        form = {"platform": "nope"} if case == "unknown platform" else {"batch_size": 0} if case == "bad batch" else {}
        r = _upload(client, body, **form)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert reason in detail and "\n" not in detail and len(detail) < 600


def test_external_data_in_an_upload_is_never_read(served, tmp_path, monkeypatch):
    client, _, _ = served
    (tmp_path / "leak.bin").write_bytes(np.array([3, 7777], dtype=np.int64).tobytes())
    monkeypatch.chdir(tmp_path)
    r = _upload(client, _external_data_model(), name="leak.onnx")
    assert r.status_code in (200, 400) and "7777" not in r.text


# ---------------------------------------------------------------------------- access, pushes, store
def _push_body(i: int, push_id: str | None = None) -> dict:
    g = tiny(i)
    return {"items": [{"fingerprint": g.fingerprint(), "graph": g.to_dict(), "provenance": {"family": "tiny", "seed": i},
                       "platform": TEST_PLATFORM.to_dict(), "batch_size": 1,
                       "values": {"status": "ok", "latency_ms_median": 1.0 + i, "latency_ms_min": 0.9 + i, "n_runs": 7},
                       **({"push_id": push_id} if push_id else {})}]}


def test_writes_need_a_write_token(served):
    client, _, tok = served
    r = client.post("/v1/measurements", json=_push_body(0))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "needs a token" in r.json()["detail"]
    assert client.post("/v1/measurements", json=_push_body(0), headers=_hdr("ac_wrong")).status_code == 401
    r = client.post("/v1/measurements", json=_push_body(0), headers=_hdr(tok["read"]))
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    r = client.post("/v1/measurements", json=_push_body(0), headers=_hdr(tok["write"]))
    assert r.status_code == 201 and r.json()["created"] == 1


def test_reads_behind_a_token_when_configured(tmp_path):
    store = Store(tmp_path / "closed.db")
    read = create_token(store, "viewer", "read")
    with TestClient(create_app(ServeSettings(read_access="token", threads=1), store=store)) as client:
        assert client.get("/v1/measurements").status_code == 401
        assert client.post("/v1/predict", files={"file": ("m.onnx", b"x")}).status_code == 401
        assert client.get("/v1/measurements", headers=_hdr(read)).status_code == 200
        assert client.get("/healthz").status_code == 200  # health stays open


def test_push_list_page_and_graph(served):
    client, store, tok = served
    w = _hdr(tok["write"])
    ids = []
    for i in range(1, 6):
        r = client.post("/v1/measurements", json=_push_body(i, push_id=f"push-{i:08d}"), headers=w)
        assert r.status_code == 201
        ids.append(r.json()["results"][0]["id"])
    again = client.post("/v1/measurements", json=_push_body(1, push_id="push-00000001"), headers=w).json()
    assert again["created"] == 0 and again["results"][0]["id"] == ids[0]  # a retried push stores nothing
    miss = client.post("/v1/measurements/missing", json={"push_ids": ["push-00000001", "push-99999999"]}, headers=w)
    assert miss.json() == {"missing": ["push-99999999"]}

    page1 = client.get("/v1/measurements", params={"family": "tiny", "limit": 3}).json()
    page2 = client.get("/v1/measurements", params={"family": "tiny", "limit": 3, "after": page1["next_after"]}).json()
    got = [m["id"] for m in page1["items"] + page2["items"]]
    assert got == sorted(got) and set(ids) <= set(got) and page2["next_after"] is None
    assert all(m["family"] == "tiny" and m["platform_name"] == "test-cpu" for m in page1["items"])
    fp = tiny(3).fingerprint()
    g = client.get(f"/v1/graphs/{fp}").json()
    assert g["name"] == "g3" and g["op_counts"] == {"Conv": 1, "Relu": 1}
    assert [m["latency_ms_median"] for m in g["measurements"]] == [4.0]
    assert client.get("/v1/graphs/" + "f" * 32).status_code == 404
    assert client.get("/v1/graphs/..%2f..%2fetc").status_code == 404
    assert client.get("/v1/measurements", params={"fingerprint": "../x"}).status_code == 400
    plats = {p["name"]: p for p in client.get("/v1/platforms").json()["platforms"]}
    assert plats["ort-cpu-1t"]["has_predictor"] and plats["test-cpu"]["measurements_ok"] >= 5
    assert not plats["test-cpu"]["has_predictor"]
    summary = client.get("/v1/store").json()
    assert summary["per_family"]["tiny"]["ok"] >= 5 and "resnet" in summary["zoo_families"]


@pytest.mark.parametrize("body, status, reason", [
    ({"items": []}, 400, "1 to 500 items"),
    ({"items": [{"platform": {"name": "x y"}}]}, 400, "platform name"),
    ({"items": [{**_push_body(9)["items"][0], "values": {"status": "ok", "latency_ms_median": "fast"}}]}, 422,
     "latency_ms_median must be a finite number"),
    ({"items": [{**_push_body(9)["items"][0], "graph": {"nodes": 5}}]}, 400, "graph"),
    ({"items": [{**_push_body(9)["items"][0], "graph": None, "fingerprint": "0" * 32}]}, 422, "has no graph"),
])
def test_bad_pushes_get_a_4xx_with_one_line(served, body, status, reason):
    client, _, tok = served
    r = client.post("/v1/measurements", json=body, headers=_hdr(tok["write"]))
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"] and "\n" not in r.json()["detail"]
    bad_json = client.post("/v1/measurements", content=b"{nope", headers=_hdr(tok["write"]))
    assert bad_json.status_code == 400 and "not JSON" in bad_json.json()["detail"]


def test_scatter_pages_and_docs(served):
    from archcast.frontends import load_graph

    client, _, _ = served
    _upload(client, EXAMPLE.read_bytes())  # the example was measured on ort-cpu-1t above (or is now)
    s = client.get("/v1/scatter", params={"platform": "ort-cpu-1t"})
    assert s.status_code == 200, s.text
    pts = s.json()["points"]
    fp = load_graph(str(EXAMPLE)).fingerprint()
    assert s.json()["has_predictor"] and any(p["fingerprint"] == fp and p["predicted_ms"] > 0 for p in pts)
    for path, text in (("/", "How fast is this network?"), ("/store", "Predicted vs measured"),
                       (f"/graphs/{fp}", fp), ("/docs", "swagger"), ("/static/app.js", "renderPrediction")):
        r = client.get(path)
        assert r.status_code == 200 and text in r.text, path
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/platforms", "/v1/measurements", "/v1/graphs/{fingerprint}", "/healthz"} <= set(spec["paths"])


def test_store_lookups_are_reused_for_the_ttl_and_forgotten_on_a_push(tmp_path):
    from archcast.frontends import load_graph
    from archcast.service.predict import load_predictor

    store = Store(tmp_path / "ttl.db")
    write = create_token(store, "agent", "write")
    platform = Platform.from_dict(load_predictor().checkpoint_config_["platform"])
    g = load_graph(str(EXAMPLE))
    with TestClient(create_app(ServeSettings(threads=1, measured_ttl_s=30), store=store)) as client:
        assert _upload(client, EXAMPLE.read_bytes()).json()["measured"] is None
        fp = store.add_graph(g)
        store.record(fp, platform, Measurement.from_times([30.0], warmup_runs=0, batch_size=1))  # another process
        assert _upload(client, EXAMPLE.read_bytes()).json()["measured"] is None  # within the TTL: remembered
        body = {"items": [{"fingerprint": fp, "platform": platform.to_dict(), "batch_size": 1,
                           "values": {"status": "ok", "latency_ms_median": 31.0}}]}
        assert client.post("/v1/measurements", json=body, headers=_hdr(write)).status_code == 201
        assert _upload(client, EXAMPLE.read_bytes()).json()["measured"]["latency_ms"] == pytest.approx(31.0)


def test_store_counts_are_served_from_memory_and_refreshed_in_the_background():
    import time as _time

    from archcast.service.engine import PredictionEngine

    class CountingStore:
        calls = 0

        def stats(self):
            CountingStore.calls += 1
            _time.sleep(0.05)
            return {"calls": CountingStore.calls}

    eng = PredictionEngine(CountingStore(), threads=1, summary_ttl_s=0.2)
    try:
        assert eng.summary() == {"calls": 1}  # the first call computes
        assert eng.summary() == {"calls": 1} and CountingStore.calls == 1  # then memory
        _time.sleep(0.25)
        t0 = _time.perf_counter()
        assert eng.summary() == {"calls": 1} and _time.perf_counter() - t0 < 0.04  # stale: served, refresh started
        deadline = _time.monotonic() + 5
        while eng.summary() != {"calls": 2} and _time.monotonic() < deadline:
            _time.sleep(0.02)
        assert eng.summary() == {"calls": 2}
    finally:
        eng.close()


def test_a_streamed_body_past_the_limit_is_cut_off_with_413(served):
    client, _, _ = served

    def chunks():  # a multipart upload without Content-Length: the limit is enforced while reading
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.onnx"\r\n\r\n'
        for _ in range(12):
            yield b"\x08" * (1 << 20)
        yield b"\r\n--b--\r\n"

    r = client.post("/v1/predict", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "upload limit is 5.0 MB" in r.json()["detail"]
    r = client.get("/v1/measurements", params={"platform": "no-such-platform"})
    assert r.status_code == 422 and "no platform 'no-such-platform'" in r.json()["detail"]


def test_settings_from_flags_over_environment_over_defaults():
    from archcast.errors import InvalidInputError
    from archcast.service.settings import ServeSettings

    env = {"ARCHCAST_SERVE_PORT": "9001", "ARCHCAST_SERVE_READ": "token", "ARCHCAST_DB": "postgresql://u@h/db",
           "ARCHCAST_SERVE_MAX_UPLOAD_MB": "10"}
    s = ServeSettings.from_env(env, port=9002, host=None)
    assert (s.host, s.port, s.read_access, s.db, s.max_upload_bytes) == ("127.0.0.1", 9002, "token",
                                                                          "postgresql://u@h/db", 10 << 20)
    assert ServeSettings.from_env(s.to_env()) == s  # what worker processes read back
    assert ServeSettings(processes=2, threads=0).prediction_threads >= 1
    with pytest.raises(InvalidInputError, match="ARCHCAST_SERVE_PORT='x' is not a valid int"):
        ServeSettings.from_env({"ARCHCAST_SERVE_PORT": "x"})
    with pytest.raises(InvalidInputError, match="read access 'all'.*open, token"):
        ServeSettings(read_access="all")
