"""``archcast adapt``: a latency predictor for a new platform from a small measured budget.

``--predictor kernels`` rescales the base platform's kernel-level predictor from the measured
latencies (:func:`archcast.adapt.kernels_run.adapt_kernels`, 20 models by default);
``--predictor archcast`` fine-tunes its network-level ensemble (:func:`archcast.adapt.run.adapt`,
50 models); ``auto`` (the default) takes ``kernels`` when the base has a kernels checkpoint.

``register(subparsers)`` adds the command to the main parser. User errors raise
:class:`~archcast.errors.ArchcastError` subclasses (the main CLI prints them as one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from archcast.errors import InvalidInputError


def _predictor(args: argparse.Namespace) -> str:
    """``kernels`` or ``archcast``: ``--predictor``, with ``auto`` resolved by the base's checkpoints."""
    if args.predictor != "auto":
        return args.predictor
    from archcast.service.checkpoints import kernel_predictor_dir
    from archcast.service.kernel_predict import is_kernel_checkpoint

    if args.base_dir is not None:
        return "kernels" if is_kernel_checkpoint(args.base_dir) else "archcast"
    return "kernels" if kernel_predictor_dir(args.base_platform) is not None else "archcast"


def cmd_adapt(args: argparse.Namespace) -> int:
    from archcast.adapt import DEFAULT_BUDGET, DEFAULT_KERNEL_BUDGET, MIN_BUDGET

    if args.budget is not None and args.budget < MIN_BUDGET:
        raise InvalidInputError(f"--budget must be >= {MIN_BUDGET} (graphs to measure); got {args.budget}")
    if args.platform == args.base_platform and _predictor(args) != "kernels":
        raise InvalidInputError(f"--platform {args.platform!r} is the base platform (--base-platform): "
                                "its predictor needs no adapting; name another platform, e.g. ort-cpu-2t")
    if args.min_runs < 1 or args.min_time < 0:
        raise InvalidInputError(f"--min-runs must be >= 1 and --min-time >= 0; got {args.min_runs}, {args.min_time}")
    if args.workers < 0:
        raise InvalidInputError(f"--workers must be >= 0 (0 = in this process); got {args.workers}")
    if args.pool_per_family < 1:
        raise InvalidInputError(f"--pool-per-family must be >= 1; got {args.pool_per_family}")
    common = dict(base_platform=args.base_platform, base_dir=args.base_dir, families=args.families,
                  pool_per_family=args.pool_per_family, start_seed=args.start_seed, workers=args.workers, db=args.db,
                  out=args.out, seed=args.seed, measure_kw={"min_runs": args.min_runs, "min_time_s": args.min_time},
                  progress=not args.no_progress)
    if _predictor(args) == "kernels":
        from archcast.adapt.kernels_run import adapt_kernels

        if args.selection is not None:
            print("archcast: note: --selection applies to --predictor archcast; the kernels predictor picks by "
                  "latency strata x kernel mix", file=sys.stderr)
        report: Any = adapt_kernels(args.platform, args.budget or DEFAULT_KERNEL_BUDGET, **common)
    else:
        from archcast.adapt.run import adapt

        report = adapt(args.platform, args.budget or DEFAULT_BUDGET, selection=args.selection or "k-center",
                       **common)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0


def register(subparsers: Any) -> None:
    """Add ``adapt`` to the main parser's ``subparsers``."""
    from archcast.adapt import (  # not adapt.run: heavy
        DEFAULT_BUDGET,
        DEFAULT_KERNEL_BUDGET,
        DEFAULT_POOL_PER_FAMILY,
        DEFAULT_START_SEED,
        PREDICTORS,
    )
    from archcast.service.checkpoints import DEFAULT_PLATFORM

    s = subparsers.add_parser(
        "adapt", help="make a latency predictor for a new platform from a small measured budget",
        description="Pick --budget zoo models, measure them on --platform into the store (resumable), adapt the "
                    "base platform's predictor to them and save it as that platform's predictor. The kernel-level "
                    "predictor (kernels) is rescaled from the measured latencies and picked by latency strata x "
                    "kernel mix on the new platform's runtime graphs; the network-level one (archcast) is "
                    "fine-tuned on picks chosen by --selection.")
    s.add_argument("--platform", required=True,
                   help="the new platform: ort-cpu-<N>t or ort-cpu-<N>t-<level> (extended, basic, disable)")
    s.add_argument("--predictor", choices=PREDICTORS, default="auto",
                   help="what to adapt: kernels (kernels-<base> checkpoint), archcast (latency-<base>), or auto "
                        "(default): kernels when the base platform has a kernels checkpoint, else archcast")
    s.add_argument("--budget", type=int, default=None,
                   help=f"models to measure (>= 5; default {DEFAULT_KERNEL_BUDGET} for kernels, "
                        f"{DEFAULT_BUDGET} for archcast)")
    s.add_argument("--base-platform", default=DEFAULT_PLATFORM, help="platform to adapt from (default %(default)s)")
    s.add_argument("--base-dir", help="adapt from this checkpoint directory instead of --base-platform's predictor")
    s.add_argument("--families", nargs="+", metavar="NAME", help="zoo families of the pool (default: all)")
    s.add_argument("--pool-per-family", type=int, default=DEFAULT_POOL_PER_FAMILY,
                   help="candidates per family to choose from (default %(default)s)")
    s.add_argument("--start-seed", type=int, default=DEFAULT_START_SEED,
                   help="first zoo seed of candidates not already in the store (default %(default)s)")
    s.add_argument("--workers", type=int, default=1, help="measuring processes (0: in this process)")
    s.add_argument("--db", help="database URL or SQLite file (default: $ARCHCAST_DB, else the per-user data directory)")
    s.add_argument("--out", help="checkpoint directory (default: the platform's user predictor directory)")
    s.add_argument("--seed", type=int, default=0, help="selection tie-break, validation split and training seed")
    s.add_argument("--selection", choices=("k-center", "k-medoids"), default=None,
                   help="archcast only (ignored for kernels): how the budget is picked from the pool (default "
                        "k-center; docs/benchmarks.md compares them)")
    s.add_argument("--min-runs", type=int, default=30, help="timed runs per model at least (default %(default)s)")
    s.add_argument("--min-time", type=float, default=0.3, help="seconds of timed runs at least (default %(default)s)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_adapt)
