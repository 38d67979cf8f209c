"""``archcast db stats|export|import-nnlqp|import-kernels``: the measurement store."""

from __future__ import annotations

import argparse
import json
from typing import Any

from archcast.cli.options import DB_HELP, help_of

EXPORT_FORMATS = ("nnlqp", "parquet", "csv")


def cmd_db_stats(args: argparse.Namespace) -> int:
    from archcast.store import Store

    st = Store(args.db, create=False).stats()  # a read: never creates a database
    if args.format == "json":
        print(json.dumps(st, indent=2))
        return 0
    print(f"store        {st['location']}" + (f" ({st['file_bytes'] / 1e6:.1f} MB)" if "file_bytes" in st else ""))
    print(f"graphs       {st['graphs']} (+{st['failed_stubs']} stubs of failed exports)")
    print(f"measurements {st['measurements_current']} current ({st['measurements_ok']} ok, "
          f"{st['measurements_failed']} failed), {st['measurements_history']} in history")
    print(f"platforms    {st['platforms']}")
    if st.get("kernel_profiles"):
        print(f"kernels      {st['kernel_profiles']} profiles")
    for pid, p in st["per_platform"].items():
        print(f"  {pid}  {p['name']:<16} {p['ok']:>7} ok {p['failed']:>5} failed  {p['device']}")
    if st["per_family"]:
        print("families")
        for fam, c in st["per_family"].items():
            print(f"  {fam:<24} {c['ok']:>7} ok {c['failed']:>5} failed")
    return 0

def cmd_db_export(args: argparse.Namespace) -> int:
    from archcast.store import Store

    store = Store(args.db, create=False)
    if args.format == "nnlqp":
        from archcast.collect.exchange import export_nnlqp

        gt = export_nnlqp(store, args.out, args.platform, progress=not args.no_progress)
        print(f"wrote {gt}")
    else:
        from archcast.collect.exchange import export_table

        path = export_table(store, args.out, args.format, platform=args.platform, current_only=not args.history)
        print(f"wrote {path}")
    return 0

def cmd_db_import_nnlqp(args: argparse.Namespace) -> int:
    from archcast.collect.exchange import import_nnlqp
    from archcast.store import Store

    counts = import_nnlqp(Store(args.db), args.dir, args.platform)
    print(f"read {counts['records']} records ({counts['graphs']} graphs): {counts['measurements_added']} "
          f"measurements added, {counts['unchanged']} already stored")
    return 0


def cmd_db_import_kernels(args: argparse.Namespace) -> int:
    from archcast.collect.kernel_profiles import import_kernels
    from archcast.store import Store

    c = import_kernels(Store(args.db), args.dataset, progress=not args.no_progress)
    print(f"read kernel profiles of {c['models']} models ({c['without_kernels']} without kernels): {c['added']} added, "
          f"{c['replaced']} replaced, {c['unchanged']} already stored; {c['graphs_added']} graphs added")
    return 0


def register(subparsers: Any) -> None:
    db_help = DB_HELP
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
    s = dsub.add_parser("import-kernels", help="import a data set's kernel profiles (kernels.csv.xz)",
                        description="Store the per-kernel profile of every model of a format-2 latency data set "
                                    "(its label statistic over the label passes) on the data set's platform, "
                                    "adding the graphs the store lacks. Running it again stores nothing new.")
    s.add_argument("dataset", metavar="DATASET_DIR", help="a latency data set directory (format 2)")
    s.add_argument("--db", help=db_help)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_db_import_kernels)
    d.set_defaults(func=help_of(d))
