"""``archcast profile``: measure zoo samples or ONNX files into the store (resumable)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from archcast.cli.options import DB_HELP, positive
from archcast.errors import InvalidInputError


def zoo_samples(specs: list[str], count: int | None, start_seed: int) -> list[Any]:
    """The samples of ``--family NAME[:COUNT] ... [--count N]``: ``COUNT`` (else ``N``) seeds of each
    family from ``start_seed`` on, seed-major, so families advance together and a run cut short
    leaves them balanced (a family with a smaller count drops out when its seeds are done)."""
    from archcast.zoo import get_family

    counts: dict[str, int] = {}
    for spec in specs:
        name, sep, n = spec.partition(":")
        if sep:
            try:
                counts[name] = int(n)
            except ValueError:
                raise InvalidInputError(f"--family {spec!r}: the count after ':' must be an integer") from None
        elif count is None:
            raise InvalidInputError(f"--family {spec!r} has no count: add --count N (samples per family) "
                                    f"or write {spec}:N")
        else:
            counts[name] = count
        positive(f"--family {spec} count", counts[name])
    families = {name: get_family(name) for name in counts}  # validate every name before starting
    return [fam.sample(seed) for seed in range(start_seed, start_seed + max(counts.values()))
            for name, fam in families.items() if seed < start_seed + counts[name]]


def cmd_profile(args: argparse.Namespace) -> int:
    from archcast.collect.runner import profile_onnx_files, profile_samples
    from archcast.profile.platform import default_platform
    from archcast.store import Store

    if args.passes is not None or args.retest is not None:
        return cmd_collect(args)
    if args.samples_of is not None:
        raise InvalidInputError("--samples-of DATASET measures with the pass protocol: add --passes N --campaign DIR")
    if bool(args.family) == bool(args.onnx):
        raise InvalidInputError("profile needs either --family NAME... (with --count) or --onnx FILE...")
    positive("--threads", args.threads)
    positive("--batch-size", args.batch_size)
    platform = default_platform(threads=args.threads, graph_opt_level=args.graph_opt_level)
    measure_kw = {"min_runs": positive("--min-runs", 50 if args.min_runs is None else args.min_runs),
                  "min_time_s": 0.5 if args.min_time is None else args.min_time}
    common = dict(workers=args.workers, progress=not args.no_progress, retry_failed=args.retry_failed,
                  timeout_s=args.timeout, measure_kw=measure_kw)
    if args.remeasure and not args.family:
        raise InvalidInputError("--remeasure applies to --family samples")
    if args.family:
        samples = zoo_samples(args.family, args.count, args.start_seed)
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
    if args.push:  # a device agent: send this platform's measurements to the team's archcast serve
        from archcast.service.client import push_store

        print(push_store(args.push, store, platform_id=platform.platform_id).line())
    return 0 if report.failed == 0 else 1


def cmd_collect(args: argparse.Namespace) -> int:
    """``--passes N`` / ``--retest N``: the measurement protocol of :mod:`archcast.collect.passes`."""
    from archcast.collect.passes import Protocol, collect_samples, retest_pass
    from archcast.profile.platform import default_platform
    from archcast.store import Store

    if args.campaign is None:
        raise InvalidInputError("--passes and --retest need --campaign DIR (the campaign's own files)")
    if args.onnx or args.remeasure:
        raise InvalidInputError("--passes/--retest measure zoo samples; drop --onnx and --remeasure")
    if args.retry_failed and args.retest is not None:
        raise InvalidInputError("--retry-failed applies to a campaign's passes, not to --retest N")
    positive("--threads", args.threads)
    platform = default_platform(threads=args.threads, graph_opt_level=args.graph_opt_level)
    store = Store(args.db)
    if args.retest is not None and args.samples_of is not None:
        raise InvalidInputError("--retest N re-measures a campaign's own models; --samples-of DATASET draws from a "
                                "data set: give one")
    if args.retest is not None:
        report = retest_pass(store, platform, args.campaign, positive("--retest", args.retest), seed=args.start_seed,
                             workers=args.workers, timeout_s=args.timeout, progress=not args.no_progress)
    else:
        if args.samples_of is not None:
            samples = _samples_of(args.samples_of, args, platform)
        else:
            if not args.family:
                raise InvalidInputError("profile --passes needs --family NAME... and --count N (or --samples-of "
                                        "DATASET --count N)")
            samples = zoo_samples(args.family, args.count, args.start_seed)
        kw: dict[str, Any] = {"passes": positive("--passes", args.passes), "kernels": not args.no_kernels,
                              "canary_every": positive("--canary-every", args.canary_every),
                              "drift_threshold": args.drift_threshold, "disagree_threshold": args.disagree_threshold,
                              "label_stat": args.label_stat, "block": positive("--block", args.block)}
        if args.min_runs is not None or args.min_time is not None:
            kw["measure_kw"] = {**Protocol().measure_kw, **({"min_runs": args.min_runs} if args.min_runs else {}),
                                **({"min_time_s": args.min_time} if args.min_time is not None else {})}
        report = collect_samples(samples, store, platform, args.campaign, protocol=Protocol(**kw),
                                 batch_size=positive("--batch-size", args.batch_size), workers=args.workers,
                                 timeout_s=args.timeout, progress=not args.no_progress,
                                 retry_failed=args.retry_failed)
    if args.no_progress:
        print(report.line())
    print(f"platform {platform.name} ({platform.platform_id}), store {store.location}, campaign {args.campaign}")
    for key, reason in report.failures[:10]:
        print(f"  failed {key}: {reason}", file=sys.stderr)
    return 0 if not report.failures else 1


def _samples_of(path: str, args: argparse.Namespace, platform: Any) -> list[Any]:
    """``--samples-of DATASET --count N --start-seed S``: N random zoo models of a data set (seeded by
    S), regenerated from their stored family, seed and config, for a retest at another time."""
    from archcast.data.latency_dataset import load_latency_dataset, pick_regenerable

    if args.family or args.count is None:
        raise InvalidInputError("--samples-of DATASET takes --count N (models to draw) and no --family")
    ds = load_latency_dataset(path)
    if ds.platform.get("platform_id") != platform.platform_id:
        settings = ("backend", "runtime", "runtime_version", "threads", "precision", "graph_opt_level")
        if any(ds.platform.get(k) != getattr(platform, k) for k in settings):
            raise InvalidInputError(f"data set {path} was measured on platform {ds.platform.get('name')} "
                                    f"({ds.platform.get('platform_id')}), not this one ({platform.name}, "
                                    f"{platform.platform_id}); pass its --threads/--graph-opt-level")
        # the same settings on another CPU model: the same models measured on this machine's platform
        print(f"note: data set {path} was measured on {ds.platform.get('device')!r}, this machine is "
              f"{platform.device!r}: another platform ({platform.platform_id}), so this measures the same models "
              "there, not a retest (compare with archcast dataset compare --cross-platform)", file=sys.stderr)
    if args.batch_size != ds.batch_size:
        raise InvalidInputError(f"data set {path} is batch size {ds.batch_size}; pass --batch-size {ds.batch_size}")
    picked = pick_regenerable(ds, positive("--count", args.count), args.start_seed, "retest")
    return [ds.records[i].sample() for i in sorted(picked)]


def register(subparsers: Any) -> None:
    from archcast.profile.platform import GRAPH_OPT_LEVELS

    db_help = DB_HELP
    s = subparsers.add_parser("profile", help="measure latency of zoo samples or ONNX files into the store",
                              description="Measure latency into the store; resumable (measured models are skipped). "
                                          "Exits 1 when some models failed (their reasons are recorded).")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--family", nargs="+", metavar="NAME[:COUNT]",
                     help="zoo families to sample; NAME:COUNT gives that family its own count")
    src.add_argument("--onnx", nargs="+", metavar="FILE", help="ONNX files to measure")
    s.add_argument("--count", type=int, help="samples per family (families written NAME:COUNT have their own)")
    s.add_argument("--start-seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=1, help="batch size of zoo samples (ONNX files keep theirs)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (0: in this process)")
    s.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (1 is the stable setting)")
    s.add_argument("--graph-opt-level", choices=GRAPH_OPT_LEVELS, default="all")
    s.add_argument("--min-runs", type=int, help="timed runs at least (default 50; with --passes 30)")
    s.add_argument("--min-time", type=float, help="seconds of timed runs at least (default 0.5; with --passes 0.3)")
    s.add_argument("--timeout", type=float, default=600.0, help="seconds per model before it is recorded failed")
    s.add_argument("--retry-failed", action="store_true",
                   help="measure again models whose last attempt failed (with --passes: in the pass it failed in)")
    s.add_argument("--remeasure", action="store_true",
                   help="measure every sample again (the old row is kept as history)")
    s.add_argument("--db", help=db_help)
    c = s.add_argument_group("measurement protocol (archcast.collect.passes: passes, canaries, kernel profiles)")
    c.add_argument("--passes", type=int, help="measure every sample in N passes, each in new worker processes")
    c.add_argument("--campaign", help="the campaign directory (settings, ONNX cache, kernel tables); resumable")
    c.add_argument("--retest", type=int, metavar="N", help="a retest pass over N random models of --campaign")
    c.add_argument("--samples-of", metavar="DATASET",
                   help="measure --count random models of a data set again (drawn with --start-seed as the seed), "
                        "regenerated from family + seed + config: a retest at another time, in a campaign of its own")
    c.add_argument("--no-kernels", action="store_true", help="no kernel profiles or optimised graphs")
    c.add_argument("--canary-every", type=int, default=10, help="models per worker between canary checkpoints")
    c.add_argument("--drift-threshold", type=float, default=0.05,
                   help="canary change across a window that re-measures the window")
    c.add_argument("--disagree-threshold", type=float, default=0.05,
                   help="spread of a model's passes that gives it a further pass")
    c.add_argument("--label-stat", default="cpu_ms_min",
                   choices=("cpu_ms_min", "cpu_ms_median", "latency_ms_min", "latency_ms_median"),
                   help="per-pass statistic the label is the median of")
    c.add_argument("--block", type=int, default=400, help="models taken through all passes before the next ones")
    s.add_argument("--push", metavar="URL", help="then push the platform's measurements to an archcast serve "
                                                 "(write token in $ARCHCAST_TOKEN)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_profile)

