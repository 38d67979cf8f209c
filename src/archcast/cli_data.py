"""Data commands of the ``archcast`` CLI: the model zoo, latency profiling, the measurement store.

``register(subparsers)`` adds ``zoo list|sample``, ``profile`` and ``db stats|export|import-nnlqp``
to the main parser. Every command returns an exit code; user errors raise
:class:`~archcast.errors.ArchcastError` subclasses (the main CLI prints them as one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from archcast.errors import InvalidInputError

EXPORT_FORMATS = ("nnlqp", "parquet", "csv")


def _help(parser: argparse.ArgumentParser) -> Any:
    return lambda _args: (parser.print_help(), 2)[1]


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise InvalidInputError(f"{name} must be >= 1; got {value}")
    return value


# --------------------------------------------------------------------------- zoo
def cmd_zoo_list(args: argparse.Namespace) -> int:
    from archcast.zoo import FAMILIES, load_builtin_families

    load_builtin_families()
    names = FAMILIES.names()
    if args.format == "json":
        print(json.dumps([{"name": n, "input_kind": FAMILIES.get(n).input_kind, "version": FAMILIES.get(n).version,
                           "description": FAMILIES.get(n).description} for n in names], indent=2))
        return 0
    if not names:
        print("no model families are registered")
        return 0
    width = max(len(n) for n in names)
    for n in names:
        fam = FAMILIES.get(n)
        print(f"{n:<{width}}  {fam.input_kind:<6}  v{fam.version:<3}  {fam.description}")
    return 0


def cmd_zoo_sample(args: argparse.Namespace) -> int:
    from archcast.zoo import get_family

    _positive("--count", args.count)
    _positive("--batch-size", args.batch_size)
    fam = get_family(args.family)  # unknown names: the error lists the valid families
    samples = [fam.sample(seed) for seed in range(args.start_seed, args.start_seed + args.count)]
    if args.out is None:
        for s in samples:
            print(json.dumps({"family": s.family, "seed": s.seed, "generator_version": s.generator_version,
                              "config": s.config}, sort_keys=True))
        return 0
    from archcast import __version__
    from archcast.frontends.onnx import load_onnx
    from archcast.zoo import export_sample

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for s in samples:
        data = export_sample(s, batch_size=args.batch_size, weight_free=True)
        path = out / f"{s.family}-{s.seed}.onnx"
        path.write_bytes(data)
        g = load_onnx(data, name=s.key)
        entries.append({"seed": s.seed, "file": path.name, "config": s.config, "fingerprint": g.fingerprint(),
                        "n_nodes": len(g), "flops": g.flops, "params": g.params, "memory_bytes": g.memory_bytes})
    manifest = {"archcast_version": __version__, "family": fam.name, "generator_version": fam.version,
                "input_kind": fam.input_kind, "batch_size": args.batch_size, "weight_free": True, "samples": entries}
    mpath = out / "manifest.json"
    mpath.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    print(f"wrote {len(entries)} weight-free ONNX files and {mpath}")
    return 0


# --------------------------------------------------------------------------- profile
def cmd_profile(args: argparse.Namespace) -> int:
    from archcast.profile.platform import default_platform
    from archcast.profile.runner import profile_onnx_files, profile_samples
    from archcast.store import Store

    if bool(args.family) == bool(args.onnx):
        raise InvalidInputError("profile needs either --family NAME... (with --count) or --onnx FILE...")
    _positive("--threads", args.threads)
    _positive("--batch-size", args.batch_size)
    platform = default_platform(threads=args.threads, graph_opt_level=args.graph_opt_level)
    measure_kw = {"min_runs": _positive("--min-runs", args.min_runs), "min_time_s": args.min_time}
    common = dict(workers=args.workers, progress=not args.no_progress, retry_failed=args.retry_failed,
                  timeout_s=args.timeout, measure_kw=measure_kw)
    if args.remeasure and not args.family:
        raise InvalidInputError("--remeasure applies to --family samples")
    if args.family:
        from archcast.zoo import get_family

        if args.count is None:
            raise InvalidInputError("profile --family needs --count N (samples per family)")
        _positive("--count", args.count)
        families = [get_family(name) for name in args.family]  # validate every name before starting
        # seed-major: families advance together, so a run cut short leaves balanced families
        samples = [f.sample(seed) for seed in range(args.start_seed, args.start_seed + args.count) for f in families]
        store = Store(args.db)
        report = profile_samples(samples, store, platform, batch_size=args.batch_size, remeasure=args.remeasure,
                                 **common)
    else:
        store = Store(args.db)
        report = profile_onnx_files(args.onnx, store, platform, **common)
    if args.no_progress:  # the runner prints the summary itself when it shows progress
        print(report.line())
    print(f"platform {platform.name} ({platform.platform_id}), store {store.location}")
    for key, reason in report.failures[:10]:
        print(f"  failed {key}: {reason}", file=sys.stderr)
    if len(report.failures) > 10:
        print(f"  ... {len(report.failures) - 10} more failures (archcast db export --format csv lists them)",
              file=sys.stderr)
    return 0 if report.failed == 0 else 1


# --------------------------------------------------------------------------- db
def cmd_db_stats(args: argparse.Namespace) -> int:
    from archcast.store import Store

    st = Store(args.db).stats()
    if args.format == "json":
        print(json.dumps(st, indent=2))
        return 0
    print(f"store        {st['location']}" + (f" ({st['file_bytes'] / 1e6:.1f} MB)" if "file_bytes" in st else ""))
    print(f"graphs       {st['graphs']} (+{st['failed_stubs']} stubs of failed exports)")
    print(f"measurements {st['measurements_current']} current ({st['measurements_ok']} ok, "
          f"{st['measurements_failed']} failed), {st['measurements_history']} in history")
    print(f"platforms    {st['platforms']}")
    for pid, p in st["per_platform"].items():
        print(f"  {pid}  {p['name']:<16} {p['ok']:>7} ok {p['failed']:>5} failed  {p['device']}")
    if st["per_family"]:
        print("families")
        for fam, c in st["per_family"].items():
            print(f"  {fam:<24} {c['ok']:>7} ok {c['failed']:>5} failed")
    return 0


def cmd_db_export(args: argparse.Namespace) -> int:
    from archcast.store import Store

    store = Store(args.db)
    if args.format == "nnlqp":
        gt = store.export_nnlqp(args.out, args.platform, progress=not args.no_progress)
        print(f"wrote {gt}")
    else:
        path = store.export_table(args.out, args.format, platform=args.platform, current_only=not args.history)
        print(f"wrote {path}")
    return 0


def cmd_db_import_nnlqp(args: argparse.Namespace) -> int:
    from archcast.store import Store

    counts = Store(args.db).import_nnlqp(args.dir, args.platform)
    print(f"read {counts['records']} records ({counts['graphs']} graphs): {counts['measurements_added']} "
          f"measurements added, {counts['unchanged']} already stored")
    return 0


# --------------------------------------------------------------------------- parser
def register(subparsers: Any) -> None:
    """Add ``zoo``, ``profile`` and ``db`` to the main parser's ``subparsers``."""
    from archcast.profile.platform import GRAPH_OPT_LEVELS

    db_help = "database URL or SQLite file (default: $ARCHCAST_DB, else the per-user data directory)"

    z = subparsers.add_parser("zoo", help="model-family generators: list families, sample architectures")
    zsub = z.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    s = zsub.add_parser("list", help="list the model families")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_zoo_list)
    s = zsub.add_parser("sample", help="sample architectures; with --out, write weight-free ONNX + manifest.json")
    s.add_argument("--family", required=True, help="a family name (archcast zoo list)")
    s.add_argument("--count", type=int, required=True, help="number of samples (seeds start-seed..)")
    s.add_argument("--start-seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=1)
    s.add_argument("--out", help="directory for the ONNX files and manifest.json (default: print the configs)")
    s.set_defaults(func=cmd_zoo_sample)
    z.set_defaults(func=_help(z))

    s = subparsers.add_parser("profile", help="measure latency of zoo samples or ONNX files into the store",
                              description="Measure latency into the store; resumable (measured models are skipped). "
                                          "Exits 1 when some models failed (their reasons are recorded).")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--family", nargs="+", metavar="NAME", help="zoo families to sample")
    src.add_argument("--onnx", nargs="+", metavar="FILE", help="ONNX files to measure")
    s.add_argument("--count", type=int, help="samples per family")
    s.add_argument("--start-seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=1, help="batch size of zoo samples (ONNX files keep theirs)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (0: in this process)")
    s.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (1 is the stable setting)")
    s.add_argument("--graph-opt-level", choices=GRAPH_OPT_LEVELS, default="all")
    s.add_argument("--min-runs", type=int, default=50, help="timed runs at least")
    s.add_argument("--min-time", type=float, default=0.5, help="seconds of timed runs at least")
    s.add_argument("--timeout", type=float, default=600.0, help="seconds per model before it is recorded failed")
    s.add_argument("--retry-failed", action="store_true", help="measure again models whose last attempt failed")
    s.add_argument("--remeasure", action="store_true",
                   help="measure every sample again (the old row is kept as history)")
    s.add_argument("--db", help=db_help)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_profile)

    d = subparsers.add_parser("db", help="the measurement store: stats, export, import")
    dsub = d.add_subparsers(dest="db_command", metavar="DB_COMMAND")
    s = dsub.add_parser("stats", help="counts of graphs, platforms and measurements")
    s.add_argument("--db", help=db_help)
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_db_stats)
    s = dsub.add_parser("export", help="export measurements as an NNLQP data set, Parquet or CSV")
    s.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    s.add_argument("--out", required=True, help="directory (nnlqp) or file (csv, parquet)")
    s.add_argument("--platform", help="platform id or name (default: all platforms)")
    s.add_argument("--history", action="store_true", help="csv/parquet: include superseded measurements")
    s.add_argument("--db", help=db_help)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_db_export)
    s = dsub.add_parser("import-nnlqp", help="import an NNLQP data set (gt.txt + ONNX files)")
    s.add_argument("dir", help="directory holding gt.txt")
    s.add_argument("--platform", required=True, help="name for the data set's platform")
    s.add_argument("--db", help=db_help)
    s.set_defaults(func=cmd_db_import_nnlqp)
    d.set_defaults(func=_help(d))


__all__ = ["register"]
