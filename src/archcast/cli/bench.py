"""``archcast bench ...``: every benchmark writes JSON + Markdown + PNG under ``--out``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from archcast.cli.options import help_of, parse_set
from archcast.errors import InvalidInputError

DEFAULT_DATASET = "datasets/ort-cpu-1t"
RESULT_SUFFIXES = (".json", ".md", ".png")


def out_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--out", help="results directory (default: a new bench-results/<time> directory; the "
                                 "committed results live in benchmarks/results)")
    s.add_argument("--overwrite", action="store_true", help="replace result files that already exist in --out")


def results_dir(args: argparse.Namespace, *stems: str) -> Path:
    """``--out`` (default: a fresh time-stamped directory), refusing to replace existing result files
    of ``stems`` unless ``--overwrite``; created and checked writable before any work starts."""
    import time

    out = Path(args.out) if args.out else Path("bench-results") / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    if not args.overwrite:
        for stem in stems:
            for suffix in RESULT_SUFFIXES:
                if (out / f"{stem}{suffix}").exists():
                    raise InvalidInputError(f"{out / (stem + suffix)} already exists; pass --overwrite to replace it "
                                            "or --out DIR for another directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".archcast-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise InvalidInputError(f"cannot write results to {str(out)!r}: {e.strerror or e}") from None
    args.out = str(out)
    return out


def cmd_bench_accuracy(args: argparse.Namespace) -> int:
    from archcast.bench.accuracy import (
        AccuracyBenchConfig,
        run_accuracy_bench,
        write_results,
    )

    if args.space == "nasbench-graph":
        datasets = [f"nasbench-graph:{d}" for d in (args.dataset or ["cora"])]
    else:
        if args.dataset:
            raise InvalidInputError("--dataset applies to --space nasbench-graph only")
        datasets = [args.space]
    kw = parse_set(args.set)
    # One thread per process: the stable, fast setting for these small models on 2 cores.
    import torch

    torch.set_num_threads(args.threads)
    kw.setdefault("lgbm", {}).setdefault("n_jobs", args.threads)
    stems = [f"accuracy_{ds.replace(':', '_')}_{args.split}" + (f"_{args.tag}" if args.tag else "") for ds in datasets]
    results_dir(args, *stems)
    for ds in datasets:
        cfg = AccuracyBenchConfig(dataset=ds, train_sizes=args.train_size, train_fraction=args.train_frac,
                                  val_size=args.val_size, seeds=args.seeds, predictors=args.predictors,
                                  split=args.split, predictor_kw=kw)
        result = run_accuracy_bench(cfg, progress=not args.no_progress)
        stem = f"accuracy_{ds.replace(':', '_')}_{args.split}" + (f"_{args.tag}" if args.tag else "")
        paths = write_results(result, args.out, stem)
        from archcast.bench.accuracy import markdown

        print(markdown(result))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench_speed(args: argparse.Namespace) -> int:
    import torch

    from archcast.bench.cell_speed import cell_speed_notes
    from archcast.bench.report import environment, write_report

    out = results_dir(args, "speed_nb201")
    torch.set_num_threads(args.threads)
    numbers, notes = cell_speed_notes(args.checkpoint)
    env = environment()
    text = "\n".join(notes + ["", f"Machine: {env['cpu']} ({env['cpu_count']} cores), torch threads "
                                   f"{env['torch_threads']}, {env['date_utc']}."]) + "\n"
    write_report({"speed": numbers, "environment": env}, out, "speed_nb201", text)
    print(text)
    return 0


def cmd_bench_latency(args: argparse.Namespace) -> int:
    from archcast.bench.latency import (
        LatencyBenchConfig,
        markdown,
        run_latency_bench,
        write_results,
    )

    if not Path(args.dataset).is_dir():
        raise InvalidInputError(f"data set directory {args.dataset!r} does not exist "
                                "(archcast dataset export writes one)")
    cfg = LatencyBenchConfig(dataset=args.dataset, protocols=args.protocol, predictors=args.predictors,
                             seeds=args.seeds, families=args.families, predictor_kw=parse_set(args.set),
                             jobs=args.jobs, train_cap=args.train_cap)
    stem = f"latency_{Path(args.dataset).name}" + (f"_{args.tag}" if args.tag else "")
    cache = results_dir(args, stem) / "jobs" / f"{stem}.jsonl"
    result = run_latency_bench(cfg, cache, progress=not args.no_progress)
    paths = write_results(result, args.out, stem)
    print(markdown(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench_adapt(args: argparse.Namespace) -> int:
    from archcast.bench.adapt import markdown, run_adapt_bench, write
    from archcast.service.checkpoints import resolve_predictor_dir

    if not Path(args.dataset).is_dir():
        raise InvalidInputError(f"data set directory {args.dataset!r} does not exist")
    base = resolve_predictor_dir(args.base_platform, args.base_dir)
    kw = parse_set(args.set)
    stem = f"adapt_{Path(args.dataset).name}"
    results_dir(args, stem)
    res = run_adapt_bench(args.dataset, base, budgets=args.budgets, seeds=args.seeds,
                          scratch_hparams=kw.get("scratch"), fine_tune_kw=kw.get("fine-tune"), jobs=args.jobs)
    paths = write(res, args.out, stem)
    print(markdown(res))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench_adapt_kernels(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from archcast.bench.adapt_kernels import markdown, run_adapt_kernels_bench, write

    for d in (args.base_dataset, args.dataset):
        if not Path(d).is_dir():
            raise InvalidInputError(f"data set directory {d!r} does not exist")
    stem = f"adapt_kernels_{Path(args.dataset).name}" + (f"_{args.tag}" if args.tag else "")
    results_dir(args, stem)
    res = run_adapt_kernels_bench(args.base_dataset, args.dataset, budgets=args.budgets, seeds=args.seeds,
                                  test_frac=args.test_frac, split_seed=args.split_seed,
                                  hparams=parse_set(args.set).get("kernels"))
    command = "archcast " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write(res, args.out, stem, command)
    print(markdown(res, command))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench_far_from_training(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from archcast.bench.far_from_training import markdown, run_far_bench, write

    if not Path(args.dataset).is_dir():
        raise InvalidInputError(f"data set directory {args.dataset!r} does not exist")
    stem = f"far_from_training_{Path(args.dataset).name}" + (f"_{args.tag}" if args.tag else "")
    results_dir(args, stem)
    res = run_far_bench(args.dataset, args.jobs_file, quantiles=args.quantiles, k=args.k, predictors=args.predictors)
    command = "archcast " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write(res, args.out, stem, command)
    print(markdown(res, command))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench_published(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from archcast.bench.published import markdown, run_published_bench, write
    from archcast.service.checkpoints import kernel_predictor_dir

    checkpoint = args.checkpoint or kernel_predictor_dir(args.platform)
    if checkpoint is None or not (Path(checkpoint) / "config.json").is_file():
        raise InvalidInputError(f"no kernels checkpoint for {args.platform!r}: pass --checkpoint DIR")
    if not Path(args.dataset).is_dir():
        raise InvalidInputError(f"data set directory {args.dataset!r} does not exist")
    stem = f"published_{args.platform}" + (f"_{args.tag}" if args.tag else "")
    out = results_dir(args, stem)
    cache = Path(args.measurements) if args.measurements else out / f"{stem}_measured.json"
    res = run_published_bench(args.names, checkpoint, args.dataset, cache, rounds=args.rounds, k=args.calib_nets,
                              draws=args.draws, remeasure=args.remeasure, progress=not args.no_progress)
    command = "archcast " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write(res, out, stem, command)
    print(markdown(res, command))
    print("wrote " + ", ".join(str(p) for p in [*paths, cache]))
    return 0


def cmd_bench_latency_speed(args: argparse.Namespace) -> int:
    from archcast.bench.latency_speed import markdown, run_speed

    out = results_dir(args, "speed_latency")
    from archcast.bench.report import write_report

    res = run_speed(args.predictor, repeats=args.repeats)
    text = markdown(res)
    write_report(res, out, "speed_latency", text)
    print(text)
    return 0


def register(sub: Any) -> None:
    """Add ``bench accuracy|speed|latency|latency-speed|adapt|adapt-kernels|far-from-training|published``."""
    b = sub.add_parser("bench", help="benchmarks (write JSON + Markdown + PNG)")
    bsub = b.add_subparsers(dest="bench", metavar="BENCH")
    s = bsub.add_parser("accuracy", help="accuracy prediction on a NAS space, all predictors side by side")
    s.add_argument("--space", choices=("nb201", "nasbench-graph"), default="nb201")
    s.add_argument("--dataset", nargs="+", help="NAS-Bench-Graph data set(s), e.g. cora pubmed")
    s.add_argument("--train-size", type=int, nargs="+", default=[781, 1563])
    s.add_argument("--train-frac", type=float, help="train on this fraction of the cells instead")
    s.add_argument("--val-size", type=int, default=200)
    s.add_argument("--seeds", type=int, default=5)
    s.add_argument("--predictors", nargs="+", help="subset of registered predictors (default: all)")
    s.add_argument("--split", choices=("random", "iso"), default="random")
    s.add_argument("--set", action="append", metavar="PREDICTOR:KEY=VALUE", help="override a hyper-parameter")
    s.add_argument("--tag", help="suffix for the result file names (e.g. to run train sizes in parallel)")
    s.add_argument("--threads", type=int, default=1, help="torch/LightGBM threads (default 1)")
    out_args(s)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_bench_accuracy)
    s = bsub.add_parser("speed", help="cell prediction speed and batched-vs-loop narformer-v2 (NB201)")
    s.add_argument("--checkpoint", help="checkpoint directory (default: the shipped NB201 predictor)")
    s.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    out_args(s)
    s.set_defaults(func=cmd_bench_speed)
    bsub_latency(bsub)
    b.set_defaults(func=help_of(b))


def bsub_latency(bsub: Any) -> None:
    from archcast.bench import DEFAULT_LATENCY_PREDICTORS as DEFAULT_PREDICTORS
    from archcast.bench import LATENCY_PROTOCOLS as PROTOCOLS

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
    out_args(s)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_bench_latency)

    s = bsub.add_parser("latency-speed", help="archcast predict: CLI wall time, in-process, batch, tokenizer")
    s.add_argument("--predictor", help="predictor directory (default: the shipped ort-cpu-1t one)")
    s.add_argument("--repeats", type=int, default=5)
    out_args(s)
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
    out_args(s)
    s.set_defaults(func=cmd_bench_adapt)

    s = bsub.add_parser("adapt-kernels", help="the kernels predictor on a new machine from a few measured models "
                                              "(per-class adaptation vs global scale vs scratch)")
    s.add_argument("--base-dataset", required=True, help="format-2 data set of the base machine")
    s.add_argument("--dataset", required=True, help="format-2 data set measured on the new machine")
    s.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 50, 100])
    s.add_argument("--seeds", type=int, default=3)
    s.add_argument("--test-frac", type=float, default=0.4, help="fixed random share of the new models held out")
    s.add_argument("--split-seed", type=int, default=12345, help="seed of that held-out split")
    s.add_argument("--set", action="append", metavar="kernels:KEY=VALUE", help="kernels hyper-parameters")
    s.add_argument("--tag", help="suffix for result file names")
    out_args(s)
    s.set_defaults(func=cmd_bench_adapt_kernels)

    s = bsub.add_parser("far-from-training", help="the kernel predictor's far-from-training warning against the "
                                                  "leave-one-family-out errors of a latency bench run")
    s.add_argument("--dataset", required=True, help="format-2 data set of the latency bench run")
    s.add_argument("--jobs-file", required=True, help="that run's jobs file (benchmarks/results/jobs/latency_*.jsonl)")
    s.add_argument("--quantiles", type=float, nargs="+", default=[0.8, 0.9, 0.95],
                   help="threshold quantiles of the inner leave-one-family-out scores (default 0.8 0.9 0.95)")
    s.add_argument("--k", type=int, default=5, help="nearest training models averaged (default 5)")
    s.add_argument("--predictors", nargs="+", help="predictors of the jobs file to report (default: all)")
    s.add_argument("--tag", help="suffix for result file names")
    out_args(s)
    s.set_defaults(func=cmd_bench_far_from_training)

    s = bsub.add_parser("published", help="published architectures the zoo does not have: measured here, predicted by "
                                          "the kernels checkpoint and the FLOPs/feature baselines, one scale calibration")
    s.add_argument("--platform", default="ort-cpu-1t", help="the checkpoint's platform (default ort-cpu-1t)")
    s.add_argument("--checkpoint", help="kernels checkpoint directory (default: the platform's)")
    s.add_argument("--dataset", default="datasets/ort-cpu-1t-v2",
                   help="data set the baselines are fitted on (default datasets/ort-cpu-1t-v2)")
    s.add_argument("--names", nargs="+", help="published networks (default: all; archcast.bench.published_nets)")
    s.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds (default 3)")
    s.add_argument("--calib-nets", type=int, default=3, help="networks one scale factor is fitted on (default 3)")
    s.add_argument("--draws", type=int, default=200, help="random draws of those networks (default 200)")
    s.add_argument("--measurements", help="measurement file to reuse/extend (default <out>/<stem>_measured.json)")
    s.add_argument("--remeasure", action="store_true", help="measure again instead of reusing the file")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--tag", help="suffix for result file names")
    out_args(s)
    s.set_defaults(func=cmd_bench_published)
