"""Bounded load test of ``archcast serve`` and store queries, all on 127.0.0.1 (a command, not a test).

    python scripts/loadtest.py predict   # N predict uploads of a weight-free ResNet-50, C concurrent
    python scripts/loadtest.py push      # N measurement pushes into PostgreSQL through the API
    python scripts/loadtest.py store     # query latency of a store holding 100k measurements
    python scripts/loadtest.py all --out benchmarks/results   # all three, JSON + Markdown

Every phase starts what it needs (``archcast serve`` as a subprocess on a free port, a throwaway
PostgreSQL server from Debian's packages) and stops it; request loops are bounded by count and by
``--max-seconds``. Latency is measured by the client per request (connection kept alive).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform as pyplatform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- helpers
def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))] if s else float("nan")


def summary(lat_s: list[float], errors: int, wall_s: float) -> dict[str, Any]:
    ms = [x * 1000 for x in lat_s]
    return {"requests": len(lat_s) + errors, "ok": len(lat_s), "errors": errors, "wall_s": round(wall_s, 2),
            "rps": round((len(lat_s) + errors) / wall_s, 1) if wall_s > 0 else None,
            "p50_ms": round(pct(ms, 50), 2), "p90_ms": round(pct(ms, 90), 2), "p99_ms": round(pct(ms, 99), 2),
            "max_ms": round(max(ms), 2) if ms else None, "mean_ms": round(statistics.fmean(ms), 2) if ms else None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: str, extra: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "archcast.cli", "serve", "--port", str(port), "--db", db, *extra],
                            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"archcast serve did not start: {log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def hammer(url: str, make_request: Callable[[int], tuple[str, str, bytes, dict[str, str]]], n: int, concurrency: int,
           max_seconds: float, ok_status: tuple[int, ...] = (200, 201)) -> dict[str, Any]:
    """``n`` requests from ``concurrency`` threads (one keep-alive connection each); stops at ``max_seconds``."""
    host, port = url.split("//")[1].split(":")
    lock = threading.Lock()
    counter = iter(range(n))
    lat: list[float] = []
    errors: list[str] = []
    t_end = time.monotonic() + max_seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while time.monotonic() < t_end:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            method, path, body, headers = make_request(i)
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                dt = time.perf_counter() - t0
                with lock:
                    if r.status in ok_status:
                        lat.append(dt)
                    else:
                        errors.append(f"{r.status} {data[:200]!r}")
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = summary(lat, len(errors), time.perf_counter() - t0)
    out["concurrency"] = concurrency
    out["error_examples"] = errors[:3]
    return out


def multipart(fields: dict[str, str], file: tuple[str, bytes] | None) -> tuple[bytes, str]:
    b = "archcastloadtest"
    parts = [f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode() for k, v in fields.items()]
    if file:
        parts.append(f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file[0]}\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + file[1] + b"\r\n")
    return b"".join(parts) + f"--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def resnet50_onnx(cache: Path) -> bytes:
    """A weight-free ResNet-50 (bottleneck x4, depths 3-4-6-3, widths 64-512) from the zoo's builder."""
    path = cache / "resnet50-weightfree.onnx"
    if path.exists():
        return path.read_bytes()
    import onnx

    from archcast.frontends.onnx import strip_weights
    from archcast.frontends.torch import export_onnx_bytes
    from archcast.zoo import get_family

    cfg = {"block": "bottleneck", "expansion": 4, "stem_channels": 64, "width_mult": 1.0, "width_mults": [1.0] * 4,
           "widths": [64, 128, 256, 512], "depths": [3, 4, 6, 3], "kernels": [3, 3, 3, 3]}
    module, inputs = get_family("resnet").build(cfg)
    data = strip_weights(onnx.load_from_string(export_onnx_bytes(module.eval(), inputs))).SerializeToString()
    path.write_bytes(data)
    return data


def machine() -> dict[str, Any]:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "python": pyplatform.python_version(), "load_avg_at_start": load}


# ---------------------------------------------------------------------------- phases
def phase_predict(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data = resnet50_onnx(tmp)
    proc, url = start_server(str(tmp / "predict.db"), args.serve_args, tmp / "serve-predict.log")
    try:
        same, ctype = multipart({}, ("resnet50.onnx", data))
        hdr = {"Content-Type": ctype}
        first = hammer(url, lambda i: ("POST", "/v1/predict", same, hdr), 1, 1, args.max_seconds)  # cold: parse once
        hot = hammer(url, lambda i: ("POST", "/v1/predict", same, hdr), args.requests, args.concurrency,
                     args.max_seconds)
        # distinct graphs (each batch size is a new graph: parse + predict, no cache hit)
        bodies = [multipart({"batch_size": str(b)}, ("resnet50.onnx", data))[0] for b in range(2, 2 + args.distinct)]
        cold = hammer(url, lambda i: ("POST", "/v1/predict", bodies[i], hdr), len(bodies), args.concurrency,
                      args.max_seconds)
        with urllib.request.urlopen(url + "/healthz") as r:
            health = json.loads(r.read())
    finally:
        stop_server(proc)
    from archcast.frontends import load_graph

    g = load_graph(data)
    return {"model": {"name": "ResNet-50 (weight-free ONNX)", "bytes": len(data), "nodes": len(g.nodes),
                      "gflops": round(g.flops / 1e9, 2)},
            "server": {"args": args.serve_args, "threads": health["threads"]},
            "first_request": first, "same_upload": hot, "distinct_uploads": cold, "cache": health["cache"]}


def _push_items(i: int, platform: dict[str, Any]) -> bytes:
    from archcast.graph.ir import NetGraph, Node

    w = i % 997 + 1
    g = NetGraph([Node("conv", "Conv", {"kernel_shape": (3, 3)}, [(1, 3, 32, 32)], [(1, w, 32, 32)], flops=w * 55296,
                       params=27 * w),
                  Node("relu", "Relu", {}, [(1, w, 32, 32)], [(1, w, 32, 32)])], [(0, 1)], name=f"push{i}").validate()
    return json.dumps({"items": [{"fingerprint": g.fingerprint(), "graph": g.to_dict(), "platform": platform,
                                  "batch_size": 1 + i // 997, "push_id": f"loadtest-{i:08d}",
                                  "values": {"status": "ok", "latency_ms_median": 0.1 + w / 100, "n_runs": 50,
                                             "host": "loadtest"}}]}).encode()


def phase_push(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from archcast.profile import Platform
    from archcast.service.auth import create_token
    from archcast.store import Store
    from archcast.store.pgserver import PgServer, missing_reason

    reason = missing_reason()
    if reason:
        return {"skipped": reason}
    with PgServer(durable=True) as pg:
        db = pg.create_database("loadtest")
        st = Store(db)
        token = create_token(st, "loadtest", "write")
        st.close()
        plat = Platform("loadtest-cpu", device="loadtest", runtime_version="0").to_dict()
        bodies = [_push_items(i, plat) for i in range(args.requests)]
        hdr = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        proc, url = start_server(db, args.serve_args, tmp / "serve-push.log")
        try:
            res = hammer(url, lambda i: ("POST", "/v1/measurements", bodies[i], hdr), len(bodies), args.concurrency,
                         args.max_seconds)
            again = hammer(url, lambda i: ("POST", "/v1/measurements", bodies[i], hdr), min(200, len(bodies)),
                           args.concurrency, args.max_seconds)  # retried pushes: no new rows
        finally:
            stop_server(proc)
        st = Store(db)
        rows = st.measurements(current_only=False, platform="loadtest-cpu")
        pushed = st.known_push_ids([f"loadtest-{i:08d}" for i in range(args.requests)])
        st.close()
    return {"backend": "postgresql (throwaway server, fsync on)", "pushes": res, "retried_pushes": again,
            "rows_stored": len(rows), "push_ids_stored": len(pushed)}


def fill_store(url: str, rows: int, graphs: int) -> dict[str, Any]:
    """``rows`` measurements over ``graphs`` graphs and 4 platforms, written in bulk (synthetic values)."""
    import zlib
    from datetime import datetime, timedelta

    from sqlalchemy import insert

    from archcast.profile import Platform
    from archcast.store import Store
    from archcast.store.schema import GraphRow, MeasurementRow, PlatformRow

    st = Store(url)
    plats = [Platform(f"bench-{k}", device=f"dev{k}", runtime_version="0") for k in range(4)]
    now = datetime(2026, 1, 1)
    ir = zlib.compress(b'{"nodes": []}')
    t0 = time.perf_counter()
    with st._engine.begin() as conn:
        conn.execute(insert(PlatformRow), [{**{k: v for k, v in p.to_dict().items()}, "created": now} for p in plats])
        conn.execute(insert(GraphRow), [{"fingerprint": f"{i:032x}", "family": f"fam{i % 19}", "seed": i, "name": f"g{i}",
                                         "n_nodes": 50, "flops": 10 ** 9, "params": 10 ** 6, "memory_bytes": 10 ** 7,
                                         "ir_json": ir, "created": now} for i in range(graphs)])
        per = rows // graphs  # measurements per graph: one current per platform, the rest history
        batch: list[dict[str, Any]] = []
        n = 0
        for i in range(graphs):
            for j in range(per):
                p = plats[j % len(plats)]
                batch.append({"graph_fingerprint": f"{i:032x}", "platform_id": p.platform_id, "batch_size": 1,
                              "status": "ok", "latency_ms_median": 1.0 + (i % 100) / 10, "latency_ms_min": 1.0,
                              "n_runs": 50, "host": "bench", "source": "archcast",
                              "measured_at": now + timedelta(seconds=n), "is_current": j >= per - len(plats),
                              "push_id": f"bench-{n:010d}"})
                n += 1
            if len(batch) >= 20000:
                conn.execute(insert(MeasurementRow), batch)
                batch = []
        if batch:
            conn.execute(insert(MeasurementRow), batch)
    fill_s = time.perf_counter() - t0
    with st._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")  # fresh planner statistics, as a long-lived store has
    st.close()
    return {"rows": n, "graphs": graphs, "platforms": len(plats), "fill_s": round(fill_s, 1),
            "platform_ids": [p.platform_id for p in plats]}


def bench_queries(url: str, info: dict[str, Any], repeats: int) -> dict[str, Any]:
    import random

    from archcast.store import Store

    st = Store(url)
    rng = random.Random(0)
    pids, g = info["platform_ids"], info["graphs"]
    mid = info["rows"] // 2
    queries: dict[str, Callable[[], Any]] = {
        "current measurement (predict's lookup)": lambda: st.current_measurement(f"{rng.randrange(g):032x}",
                                                                                 rng.choice(pids), 1),
        "page of 100, one platform": lambda: st.measurements(platform=rng.choice(pids), limit=100),
        "page of 100 after a mid id (keyset)": lambda: st.measurements(platform=rng.choice(pids), limit=100,
                                                                        after_id=mid + rng.randrange(1000)),
        "page of 100, one family": lambda: st.measurements(family=f"fam{rng.randrange(19)}", limit=100),
        "a graph's history": lambda: st.measurements(fingerprint=f"{rng.randrange(g):032x}", current_only=False),
        "graph info": lambda: st.graph_info(f"{rng.randrange(g):032x}"),
        "100 push ids known?": lambda: st.known_push_ids([f"bench-{rng.randrange(info['rows']):010d}"
                                                          for _ in range(100)]),
        "stats (platform and family counts)": lambda: st.stats(),
    }
    out = {}
    for name, fn in queries.items():
        fn()  # warm
        lat = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            lat.append(time.perf_counter() - t0)
        out[name] = {k: v for k, v in summary(lat, 0, sum(lat)).items() if k in ("p50_ms", "p99_ms", "max_ms")}
    st.close()
    return out


def phase_store(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from archcast.store.pgserver import PgServer, missing_reason

    result: dict[str, Any] = {}
    url = str(tmp / "store100k.db")
    info = fill_store(url, args.rows, args.rows // 5)
    result["sqlite"] = {"fill": {k: v for k, v in info.items() if k != "platform_ids"},
                        "queries": bench_queries(url, info, args.query_repeats)}
    if missing_reason() is None:
        with PgServer(durable=True) as pg:
            url = pg.create_database("store100k")
            info = fill_store(url, args.rows, args.rows // 5)
            result["postgresql"] = {"fill": {k: v for k, v in info.items() if k != "platform_ids"},
                                    "queries": bench_queries(url, info, args.query_repeats)}
    else:
        result["postgresql"] = {"skipped": missing_reason()}
    return result


# ---------------------------------------------------------------------------- report
def markdown(res: dict[str, Any]) -> str:
    lines = ["# archcast serve: load test", "",
             f"Command: `{'`, `'.join(res.get('commands') or [res['command']])}` on {res['machine']['cpus']} CPUs "
             f"(load average at start "
             f"{res['machine']['load_avg_at_start']}), {res['date']}. Client and server share the machine.", ""]

    def row(name: str, s: dict[str, Any]) -> str:
        return (f"| {name} | {s['requests']} | {s['concurrency']} | {s['p50_ms']} | {s['p99_ms']} | {s['rps']} | "
                f"{s['errors']} |")

    if "predict" in res:
        p = res["predict"]
        lines += [f"## Predict over HTTP: {p['model']['name']}, {p['model']['nodes']} nodes, "
                  f"{p['model']['gflops']} GFLOPs, {p['model']['bytes']} bytes", "",
                  "| requests | n | concurrent | p50 ms | p99 ms | req/s | errors |", "|---|---|---|---|---|---|---|",
                  row("first upload (parse + predict)", p["first_request"]),
                  row("same upload again (graph and prediction cached)", p["same_upload"]),
                  row("distinct uploads (new batch size each: parse + predict)", p["distinct_uploads"]), ""]
    if "push" in res:
        q = res["push"]
        if "skipped" in q:
            lines += [f"## Pushes: skipped ({q['skipped']})", ""]
        else:
            lines += [f"## Measurement pushes into {q['backend']}", "",
                      "| requests | n | concurrent | p50 ms | p99 ms | req/s | errors |", "|---|---|---|---|---|---|---|",
                      row("push one measurement (new graph)", q["pushes"]),
                      row("the same pushes retried (no new rows)", q["retried_pushes"]), "",
                      f"Rows stored: {q['rows_stored']} for {q['push_ids_stored']} distinct push ids "
                      "(a retried push adds nothing).", ""]
    if "store" in res:
        lines += ["## Store queries with 100k measurements", ""]
        for backend, s in res["store"].items():
            if "skipped" in s:
                lines += [f"{backend}: skipped ({s['skipped']})", ""]
                continue
            f = s["fill"]
            lines += [f"### {backend}: {f['rows']} measurements, {f['graphs']} graphs, {f['platforms']} platforms "
                      f"(bulk fill {f['fill_s']} s)", "", "| query | p50 ms | p99 ms | max ms |", "|---|---|---|---|"]
            lines += [f"| {name} | {v['p50_ms']} | {v['p99_ms']} | {v['max_ms']} |" for name, v in s["queries"].items()]
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("phase", choices=("predict", "push", "store", "all"))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--distinct", type=int, default=40, help="distinct uploads (cache misses) in the predict phase")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--query-repeats", type=int, default=200)
    ap.add_argument("--max-seconds", type=float, default=300.0, help="bound of each request loop")
    ap.add_argument("--serve-args", nargs=argparse.REMAINDER, default=[], help="extra archcast serve flags (last)")
    ap.add_argument("--out", type=Path, help="write serve_loadtest.json and .md here")
    args = ap.parse_args(argv)
    res: dict[str, Any] = {"command": "python scripts/loadtest.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="archcast-load-") as d:
        tmp = Path(d)
        for name, fn in (("predict", phase_predict), ("push", phase_push), ("store", phase_store)):
            if args.phase in (name, "all"):
                print(f"[{name}] ...", file=sys.stderr, flush=True)
                res[name] = fn(args, tmp)
                print(json.dumps(res[name], indent=1), file=sys.stderr, flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        old = args.out / "serve_loadtest.json"
        if old.exists() and args.phase != "all":  # one phase rerun: keep the others' results
            prev = json.loads(old.read_text())
            res = {**prev, **{k: v for k, v in res.items() if k in ("predict", "push", "store")},
                   "commands": sorted(set(prev.get("commands", [prev.get("command")])) | {res["command"]})}
        (args.out / "serve_loadtest.json").write_text(json.dumps(res, indent=2) + "\n")
        (args.out / "serve_loadtest.md").write_text(markdown(res) + "\n")
        print(f"wrote {args.out / 'serve_loadtest.json'} and .md", file=sys.stderr)
    else:
        print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
