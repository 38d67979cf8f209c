"""``archcast bench latency``: the latency predictors side by side (see :mod:`archcast.latency.bench`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from archcast.errors import InvalidInputError

DEFAULT_DATASET = "datasets/ort-cpu-1t"


def parse_set(items: list[str] | None) -> dict[str, dict[str, Any]]:
    kw: dict[str, dict[str, Any]] = {}
    for item in items or []:
        name, _, rest = item.partition(":")
        key, eq, val = rest.partition("=")
        if not eq or not name or not key:
            raise InvalidInputError(f"--set {item!r} is not PREDICTOR:KEY=VALUE")
        try:
            value: Any = json.loads(val)
        except json.JSONDecodeError:
            value = val
        kw.setdefault(name, {})[key] = value
    return kw


def cmd_bench_latency(args: argparse.Namespace) -> int:
    from archcast.latency.bench import LatencyBenchConfig, markdown, run_latency_bench, write_results

    if not Path(args.dataset).is_dir():
        raise InvalidInputError(f"data set directory {args.dataset!r} does not exist "
                                "(archcast dataset export writes one)")
    cfg = LatencyBenchConfig(dataset=args.dataset, protocols=args.protocol, predictors=args.predictors,
                             seeds=args.seeds, families=args.families, predictor_kw=parse_set(args.set),
                             jobs=args.jobs, train_cap=args.train_cap)
    stem = f"latency_{Path(args.dataset).name}" + (f"_{args.tag}" if args.tag else "")
    cache = Path(args.out) / "jobs" / f"{stem}.jsonl"
    result = run_latency_bench(cfg, cache, progress=not args.no_progress)
    paths = write_results(result, args.out, stem)
    print(markdown(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_train_latency(args: argparse.Namespace) -> int:
    from archcast.latency.platforms import predictor_dir_for
    from archcast.latency.train import train_platform_predictor

    if args.calibrate:
        from archcast.latency.train import calibrate_checkpoint

        if not args.bench:
            raise InvalidInputError("--calibrate DIR needs --bench BENCH.json (a latency benchmark with a LOFO run)")
        k = calibrate_checkpoint(args.calibrate, args.bench)
        print(f"{args.calibrate}: 90 % interval k = {k:.3f} (from {args.bench})")
        return 0
    if not Path(args.dataset).is_dir():
        raise InvalidInputError(f"data set directory {args.dataset!r} does not exist")
    kw = parse_set([f"archcast:{x}" for x in (args.set or [])]).get("archcast", {})
    out = Path(args.out) if args.out else None
    if out is None:
        import json as _json

        name = _json.loads((Path(args.dataset) / "platform.json").read_text())["name"]
        out = predictor_dir_for(name)
    info = train_platform_predictor(args.dataset, out, bench=args.bench, seed=args.seed,
                                    progress=not args.no_progress, **kw)
    t = info["trained_on"]
    print(f"saved {out}: {t['n_train']} training models, validation MAPE {t['val_mape'] * 100:.2f} %, "
          f"Acc(10%) {t['val_acc10'] * 100:.1f} %; interval k = {info['interval']['k']:.2f} "
          f"({info['interval']['source']}); fit {t['fit_s']:.0f} s")
    return 0


def register_train(sub: Any) -> None:
    s = sub.add_parser("train-latency", help="train a platform's latency predictor from a measured data set")
    s.add_argument("--dataset", default=DEFAULT_DATASET)
    s.add_argument("--out", help="checkpoint directory (default: the user predictor dir for the data set's platform)")
    s.add_argument("--bench", help="latency benchmark JSON whose LOFO run calibrates the 90 %% interval")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyper-parameter")
    s.add_argument("--calibrate", metavar="DIR", help="only set DIR's interval k from --bench (no training)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_train_latency)


def cmd_bench_adapt(args: argparse.Namespace) -> int:
    from archcast.latency.adapt_bench import markdown, run_adapt_bench, write
    from archcast.latency.platforms import resolve_predictor_dir

    if not Path(args.dataset).is_dir():
        raise InvalidInputError(f"data set directory {args.dataset!r} does not exist")
    base = resolve_predictor_dir(args.base_platform, args.base_dir)
    kw = parse_set(args.set)
    res = run_adapt_bench(args.dataset, base, budgets=args.budgets, seeds=args.seeds,
                          scratch_hparams=kw.get("scratch"), fine_tune_kw=kw.get("fine-tune"), jobs=args.jobs)
    stem = f"adapt_{Path(args.dataset).name}"
    paths = write(res, args.out, stem)
    print(markdown(res))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench_latency_speed(args: argparse.Namespace) -> int:
    from archcast.latency.speed import markdown, run_speed

    res = run_speed(args.predictor, repeats=args.repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed_latency.json").write_text(json.dumps(res, indent=1))
    text = markdown(res)
    (out / "speed_latency.md").write_text(text)
    print(text)
    return 0


def register_bench(bsub: Any) -> None:
    from archcast.latency import DEFAULT_PREDICTORS, PROTOCOLS

    s = bsub.add_parser("latency", help="latency predictors side by side: in-family and leave-one-family-out")
    s.add_argument("--dataset", default=DEFAULT_DATASET, help=f"measured data set directory (default {DEFAULT_DATASET})")
    s.add_argument("--protocol", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    s.add_argument("--predictors", nargs="+", default=list(DEFAULT_PREDICTORS))
    s.add_argument("--seeds", type=int, default=3)
    s.add_argument("--families", nargs="+", help="leave-one-family-out folds to run (default: all)")
    s.add_argument("--set", action="append", metavar="PREDICTOR:KEY=VALUE", help="override a hyper-parameter")
    s.add_argument("--train-cap", type=int, help="at most N training models per family (CPU budget)")
    s.add_argument("--jobs", type=int, default=2, help="worker processes, one torch thread each (default 2)")
    s.add_argument("--tag", help="suffix for result file names")
    s.add_argument("--out", default="benchmarks/results")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_bench_latency)

    s = bsub.add_parser("latency-speed", help="archcast predict: CLI wall time, in-process, batch, tokenizer")
    s.add_argument("--predictor", help="predictor directory (default: the shipped ort-cpu-1t one)")
    s.add_argument("--repeats", type=int, default=5)
    s.add_argument("--out", default="benchmarks/results")
    s.set_defaults(func=cmd_bench_latency_speed)

    s = bsub.add_parser("adapt", help="error vs number of measurements on a new platform (fine-tune vs scratch)")
    s.add_argument("--dataset", required=True, help="data set measured on the new platform")
    s.add_argument("--base-platform", default="ort-cpu-1t")
    s.add_argument("--base-dir", help="base predictor directory (default: the base platform's)")
    s.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 50, 100])
    s.add_argument("--jobs", type=int, default=2, help="seeds run in parallel processes")
    s.add_argument("--seeds", type=int, default=3)
    s.add_argument("--set", action="append", metavar="scratch|fine-tune:KEY=VALUE",
                   help="hyper-parameters of the from-scratch predictor or fine_tune() keywords")
    s.add_argument("--out", default="benchmarks/results")
    s.set_defaults(func=cmd_bench_adapt)
