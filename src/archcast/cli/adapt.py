"""``archcast adapt``: a latency predictor for a new platform from a small measured budget.

``register(subparsers)`` adds the command to the main parser. User errors raise
:class:`~archcast.errors.ArchcastError` subclasses (the main CLI prints them as one line).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from archcast.errors import InvalidInputError


def cmd_adapt(args: argparse.Namespace) -> int:
    from archcast.adapt import MIN_BUDGET
    from archcast.adapt.run import adapt

    if args.budget < MIN_BUDGET:
        raise InvalidInputError(f"--budget must be >= {MIN_BUDGET} (graphs to measure); got {args.budget}")
    if args.platform == args.base_platform:
        raise InvalidInputError(f"--platform {args.platform!r} is the base platform (--base-platform): "
                                "its predictor needs no adapting; name another platform, e.g. ort-cpu-2t")
    if args.min_runs < 1 or args.min_time < 0:
        raise InvalidInputError(f"--min-runs must be >= 1 and --min-time >= 0; got {args.min_runs}, {args.min_time}")
    if args.workers < 0:
        raise InvalidInputError(f"--workers must be >= 0 (0 = in this process); got {args.workers}")
    if args.pool_per_family < 1:
        raise InvalidInputError(f"--pool-per-family must be >= 1; got {args.pool_per_family}")
    report = adapt(
        args.platform, args.budget, base_platform=args.base_platform, base_dir=args.base_dir,
        families=args.families, pool_per_family=args.pool_per_family, start_seed=args.start_seed,
        workers=args.workers, db=args.db, out=args.out, seed=args.seed,
        measure_kw={"min_runs": args.min_runs, "min_time_s": args.min_time}, selection=args.selection,
        progress=not args.no_progress)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0


def register(subparsers: Any) -> None:
    """Add ``adapt`` to the main parser's ``subparsers``."""
    from archcast.adapt import DEFAULT_BUDGET, DEFAULT_POOL_PER_FAMILY, DEFAULT_START_SEED  # not adapt.run: heavy
    from archcast.service.checkpoints import DEFAULT_PLATFORM

    s = subparsers.add_parser(
        "adapt", help="make a latency predictor for a new platform from a small measured budget",
        description="Choose --budget diverse zoo models (k-center in the base predictor's embedding space), "
                    "measure them on --platform into the store (resumable), fine-tune the base predictor and "
                    "save it as that platform's predictor.")
    s.add_argument("--platform", required=True,
                   help="the new platform: ort-cpu-<N>t or ort-cpu-<N>t-<level> (extended, basic, disable)")
    s.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="models to measure (>= 5; default %(default)s)")
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
    s.add_argument("--selection", choices=("k-center", "k-medoids"), default="k-center",
                   help="how the budget is picked from the pool (default %(default)s; docs/benchmarks.md compares them)")
    s.add_argument("--min-runs", type=int, default=30, help="timed runs per model at least (default %(default)s)")
    s.add_argument("--min-time", type=float, default=0.3, help="seconds of timed runs at least (default %(default)s)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_adapt)
