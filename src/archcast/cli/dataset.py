"""Latency data set commands of the ``archcast`` CLI: ``dataset export|verify|retest|compare|merge|datasheet``.

``register(subparsers)`` adds them to the main parser. User errors raise
:class:`~archcast.errors.ArchcastError` subclasses (the main CLI prints them as one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from archcast.errors import InvalidInputError


def _measure_kw(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--min-runs``/``--min-time`` as measure_kw, None when neither is given."""
    if args.min_runs is None and args.min_time is None:
        return None
    if args.min_runs is None or args.min_time is None:
        raise InvalidInputError("give both --min-runs and --min-time (the protocol the store was measured with)")
    if args.min_runs < 1 or args.min_time < 0:
        raise InvalidInputError(f"--min-runs must be >= 1 and --min-time >= 0; got {args.min_runs}, {args.min_time}")
    return {"min_runs": args.min_runs, "min_time_s": args.min_time}


def cmd_export(args: argparse.Namespace) -> int:
    from archcast.collect.export import export_latency_dataset
    from archcast.data.latency_dataset import load_latency_dataset
    from archcast.store import Store

    out = export_latency_dataset(Store(args.db), args.out, args.platform, args.batch_size,
                                 measure_kw=_measure_kw(args), progress=not args.no_progress,
                                 campaign=args.campaign, label_stat=args.label_stat,
                                 normalise=False if args.raw else None)
    ds = load_latency_dataset(out)
    c = ds.manifest["counts"]
    print(f"wrote {out}: {c['models']} models in {len(ds.families())} families, {c['failures']} failures, "
          f"{c['aliases']} aliases; fingerprint {ds.fingerprint}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from archcast.collect.verify import verify_regeneration

    bad = verify_regeneration(args.dir, args.count, args.seed, progress=not args.no_progress)
    if not bad:
        print(f"ok: {args.count} random models (or all, if fewer) regenerate from family + seed to their "
              "stored config and fingerprint")
        return 0
    for m in bad:
        print(m.line(), file=sys.stderr)
    print(f"{len({m.fingerprint for m in bad})} models do not regenerate as stored", file=sys.stderr)
    return 1


def cmd_retest(args: argparse.Namespace) -> int:
    from archcast.collect.retest import retest_latency
    from archcast.data.latency_dataset import NOISE_FILE

    nf = retest_latency(args.dir, args.count, args.seed, args.workers, args.db, measure_kw=_measure_kw(args),
                        timeout_s=args.timeout, progress=not args.no_progress)
    if args.format == "json":
        print(json.dumps(nf, indent=1))
        return 0
    med = nf.get("median_latency", {})
    print(f"{nf['n']} models re-measured ({nf['n_not_paired']} not paired); median CV {_pct(nf['median_cv_all'])} "
          f"(data set); test-retest MAPE {_pct(med.get('mape'))}, median abs. rel. diff. {_pct(med.get('median_ape'))}, "
          f"drift {_pct(nf.get('drift'))}; wrote {args.dir}/{NOISE_FILE}")
    return 0


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def cmd_compare(args: argparse.Namespace) -> int:
    from archcast.collect.compare import compare_datasets, render_comparison
    from archcast.collect.dataset_files import write_json

    c = compare_datasets(args.base, args.other, cross_platform=args.cross_platform)
    if args.out:
        write_json(Path(args.out), c)
    print(json.dumps(c, indent=1) if args.format == "json" else render_comparison(c))
    if args.out and args.format == "text":
        print(f"wrote {args.out}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from archcast.collect.merge import merge_datasets
    from archcast.data.latency_dataset import load_latency_dataset

    ds = load_latency_dataset(merge_datasets(args.sources, Path(args.out), progress=not args.no_progress))
    m = ds.manifest
    c = m["counts"]
    idx = ", ".join(f"{s['host']} " + ("-" if s["speed_index_median"] is None else f"{s['speed_index_median']:.3g}")
                    for s in m["sources"])
    print(f"wrote {ds.path}: {c['models']} models in {len(ds.families())} families from {len(m['sources'])} data sets "
          f"({c['duplicates_dropped']} duplicates dropped), labels on the canary scale of {m['label']['reference_host']} "
          f"(speed index {idx}); fingerprint {ds.fingerprint}")
    return 0


def cmd_datasheet(args: argparse.Namespace) -> int:
    from archcast.collect.datasheet import write_datasheet

    print(f"wrote {write_datasheet(args.dir, note=args.note)}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``dataset`` (export, verify, retest, datasheet) to the main parser's ``subparsers``."""
    db_help = "database URL or SQLite file (default: $ARCHCAST_DB, else the per-user data directory)"
    d = subparsers.add_parser("dataset", help="latency data sets: export from the store, verify, retest, datasheet")
    dsub = d.add_subparsers(dest="dataset_command", metavar="DATASET_COMMAND")

    s = dsub.add_parser("export", help="write one platform's measurements as a data set directory")
    s.add_argument("--db", help=db_help)
    s.add_argument("--platform", required=True, help="platform id or name (archcast db stats)")
    s.add_argument("--out", required=True, help="data set directory to write")
    s.add_argument("--batch-size", type=int, default=1)
    s.add_argument("--min-runs", type=int, help="the protocol the store was measured with (recorded in the manifest)")
    s.add_argument("--min-time", type=float, help="seconds of timed runs the store was measured with")
    s.add_argument("--campaign", help="a campaign directory of archcast profile --passes: write format 2 (labels "
                                      "across passes, pass rows, kernel tables, optimised graphs)")
    s.add_argument("--label-stat", choices=("cpu_ms_min", "cpu_ms_median", "latency_ms_min", "latency_ms_median"),
                   help="with --campaign: the per-pass statistic of the label (default: the campaign's)")
    s.add_argument("--raw", action="store_true", help="with --campaign: labels without canary normalisation")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_export)

    s = dsub.add_parser("verify", help="regenerate random models from family + seed and compare fingerprints",
                        description="Exits 1 when a model does not regenerate as stored.")
    s.add_argument("dir", help="data set directory")
    s.add_argument("--count", type=int, default=20, help="models to regenerate (random)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random choice")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_verify)

    s = dsub.add_parser("retest", help="re-measure random models in new processes: noise_floor.json + retest.csv")
    s.add_argument("dir", help="data set directory")
    s.add_argument("--count", type=int, default=300, help="models to re-measure (random)")
    s.add_argument("--workers", type=int, default=2, help="worker processes (0: in this process)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random choice")
    s.add_argument("--db", help="store for the retest (resumable; not the data set's own store; "
                                "default: a temporary one)")
    s.add_argument("--min-runs", type=int, help="default: the data set's recorded protocol, else 30")
    s.add_argument("--min-time", type=float, help="default: the data set's recorded protocol, else 0.3")
    s.add_argument("--timeout", type=float, default=600.0, help="seconds per model before it is recorded failed")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_retest)

    s = dsub.add_parser("compare", help="two format-2 data sets of one platform model by model: test-retest of "
                                        "labels and kernels on one canary speed scale",
                        description="A retest at another time (profile --samples-of) against its data set, or two "
                                    "campaigns before a merge: label error raw and canary-normalised, ablation, "
                                    "per family, kernel times, machine speed.")
    s.add_argument("base", help="data set directory (the reference)")
    s.add_argument("other", help="data set directory compared with it")
    s.add_argument("--cross-platform", action="store_true",
                   help="allow two platforms (another CPU model): how far apart the machines are, not a noise floor")
    s.add_argument("--out", help="also write the full result as JSON here")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_compare)

    s = dsub.add_parser("merge", help="format-2 data sets of one platform (other machines or days) into one, "
                                      "labels on the first one's canary speed scale",
                        description="Hosts are renamed HOST@CAMPAIGN so machines stay apart; every label and kernel "
                                    "time is divided by the canary speed index of its row on the first data set's "
                                    "scale; a model in several data sets is kept from the first.")
    s.add_argument("sources", nargs="+", metavar="SRC", help="data set directories (format 2); the first is the scale")
    s.add_argument("--out", required=True, help="directory to write (new, empty, or a previous merge output)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_merge)

    s = dsub.add_parser("datasheet", help="write DATASHEET.md and latency histograms into the data set directory")
    s.add_argument("dir", help="data set directory")
    s.add_argument("--note", help="format 2: the conditions of the measurement (kept in NOTE.md), e.g. a busy machine")
    s.set_defaults(func=cmd_datasheet)
    d.set_defaults(func=lambda _a: (d.print_help(), 2)[1])


__all__ = ["register"]
