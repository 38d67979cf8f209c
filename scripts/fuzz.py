#!/usr/bin/env python
"""Long fuzz runs of archcast's loaders (the input families live in ``tests/fuzz/fuzzlib.py``).

Inputs run in guarded worker processes (address-space limit, per-input wall-clock limit), so
hangs, memory blow-ups and native crashes are counted instead of stopping the run. Work is split
into chunks whose results are appended to ``--out``/``<family>-<start>.jsonl``; a rerun skips the
chunks already done (resumable), and ``--summary`` aggregates every chunk file into JSON:
per family tried / ok / clean error / uncaught / hang / memory / crash, and the distinct
signatures of everything that is not ok or clean (with the layer it came from).

Example (the run behind benchmarks/results/fuzz_summary.json)::

    nice -n 10 .venv/bin/python scripts/fuzz.py --out /tmp/archcast-fuzz --workers 2 \\
        --families random_bytes=20000 truncation=25000 bitflip=8000 cell_string=25000 \\
        api_options=5000 onnx_mutation=6000 random_graph=6000 graph_json=3000 big_graph=40 \\
        predict=600 cli=60 --summary benchmarks/results/fuzz_summary.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))


# ---------------------------------------------------------------------------- worker side
def worker(memory_gb: float) -> int:
    import resource

    limit = int(memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import fuzzlib

    for line in sys.stdin:
        family, seed, index = line.split()
        t0 = time.perf_counter()
        try:
            r = fuzzlib.run_one(family, int(seed), int(index))
        except MemoryError:
            r = {"outcome": "memory", "signature": "MemoryError in the harness"}
        r["s"] = round(time.perf_counter() - t0, 3)
        r["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        sys.stdout.write(json.dumps(r) + "\n")
        sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------- driver side
class Worker:
    def __init__(self, memory_gb: float) -> None:
        self.memory_gb = memory_gb
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", "--memory-gb", str(self.memory_gb)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     cwd=str(ROOT), start_new_session=True, text=True, bufsize=1)

    def kill(self) -> int | None:
        if self.proc is None:
            return None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        rc = self.proc.wait()
        self.proc = None
        return rc

    def run(self, family: str, seed: int, index: int, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(f"{family} {seed} {index}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            rc = self.kill()
            return {"outcome": "crash", "signature": f"worker died (status {rc})"}
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            return {"outcome": "hang", "signature": f"no result in {timeout:.0f} s", "s": timeout}
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            self.proc = None
            sig = signal.Signals(-rc).name if rc is not None and rc < 0 and -rc in signal.valid_signals() else rc
            outcome = "memory" if sig == "SIGKILL" else "crash"
            return {"outcome": outcome, "signature": f"worker died ({sig})"}
        return json.loads(line)


def run_chunk(w: Worker, family: str, seed: int, start: int, count: int, timeout: float, path: Path) -> None:
    tmp = path.with_suffix(".part")
    with tmp.open("w") as f:
        for i in range(start, start + count):
            r = w.run(family, seed, i, timeout)
            r["i"] = i
            f.write(json.dumps(r) + "\n")
    tmp.rename(path)


def summarise(out: Path, seed: int) -> dict:
    fams: dict[str, dict] = {}
    for p in sorted(out.glob("*.jsonl")):
        family = p.name.rsplit("-", 1)[0]
        d = fams.setdefault(family, {"tried": 0, "ok": 0, "clean": 0, "uncaught": 0, "hang": 0, "memory": 0,
                                     "crash": 0, "multiline_errors": 0, "max_s": 0.0, "max_rss_mb": 0,
                                     "signatures": collections.Counter()})
        for line in p.read_text().splitlines():
            r = json.loads(line)
            d["tried"] += 1
            d[r["outcome"]] = d.get(r["outcome"], 0) + 1
            d["multiline_errors"] += int(bool(r.get("multiline")))
            d["max_s"] = max(d["max_s"], float(r.get("s", 0)))
            d["max_rss_mb"] = max(d["max_rss_mb"], int(r.get("rss_mb", 0)))
            if r["outcome"] not in ("ok", "clean"):
                d["signatures"][f"[{r.get('layer', '?')}] {r['outcome']}: {r.get('signature', '')}"] += 1
    total = collections.Counter()
    for d in fams.values():
        d["signatures"] = dict(d["signatures"].most_common(40))
        for k in ("tried", "ok", "clean", "uncaught", "hang", "memory", "crash"):
            total[k] += d[k]
    return {"seed": seed, "total": dict(total), "families": fams,
            "command": "scripts/fuzz.py (see its docstring)", "python": sys.version.split()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit of each worker")
    ap.add_argument("--out", type=Path, default=Path("/tmp/archcast-fuzz"), help="chunk results directory")
    ap.add_argument("--families", nargs="*", default=[], help="family=count ...")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per input before it counts as a hang")
    ap.add_argument("--summary", type=Path, help="write the aggregated JSON here")
    args = ap.parse_args()
    if args.worker:
        return worker(args.memory_gb)
    args.out.mkdir(parents=True, exist_ok=True)
    todo = []
    for spec in args.families:
        family, _, count = spec.partition("=")
        for start in range(0, int(count), args.chunk):
            path = args.out / f"{family}-{start:07d}.jsonl"
            if not path.exists():
                todo.append((family, start, min(args.chunk, int(count) - start), path))
    # interleave families so a partial run still covers all of them
    todo.sort(key=lambda t: (t[1], t[0]))
    if todo:
        import threading

        lock = threading.Lock()

        def loop() -> None:
            w = Worker(args.memory_gb)
            while True:
                with lock:
                    if not todo:
                        break
                    family, start, count, path = todo.pop(0)
                t0 = time.time()
                run_chunk(w, family, args.seed, start, count, args.timeout, path)
                print(f"{time.strftime('%H:%M:%S')} {family} {start}+{count} in {time.time() - t0:.0f} s "
                      f"({len(todo)} chunks left)", flush=True)
            w.kill()

        threads = [threading.Thread(target=loop) for _ in range(max(1, args.workers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    summary = summarise(args.out, args.seed)
    text = json.dumps(summary, indent=1, sort_keys=True)
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(text + "\n")
    print(json.dumps(summary["total"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
