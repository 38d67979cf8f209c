"""``archcast train-latency`` (a platform's latency predictor from a data set) and
``archcast train-cell`` (a cell accuracy predictor)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from archcast.cli.options import parse_set
from archcast.errors import InvalidInputError

DEFAULT_DATASET = "datasets/ort-cpu-1t"


def cmd_train_latency(args: argparse.Namespace) -> int:
    from archcast.service.build import train_platform_predictor
    from archcast.service.checkpoints import predictor_dir_for

    if args.calibrate:
        from archcast.service.build import calibrate_checkpoint

        if not args.bench:
            raise InvalidInputError("--calibrate DIR needs --bench BENCH.json (a latency benchmark with a LOFO run)")
        k = calibrate_checkpoint(args.calibrate, args.bench)
        print(f"{args.calibrate}: 90 % interval k = {k:.3f} (from {args.bench})")
        return 0
    if not Path(args.dataset).is_dir():
        raise InvalidInputError(f"data set directory {args.dataset!r} does not exist")
    if args.ood_only:
        return _ood_only(args)
    kw = parse_set([f"{args.predictor}:{x}" for x in (args.set or [])]).get(args.predictor, {})
    out = Path(args.out) if args.out else None
    if out is None:
        import json as _json

        name = _json.loads((Path(args.dataset) / "platform.json").read_text())["name"]
        if args.predictor == "kernels":
            from archcast.service.checkpoints import kernel_predictor_dir

            out = kernel_predictor_dir(name, user=True)
        else:
            out = predictor_dir_for(name)
    if args.predictor == "kernels":
        from archcast.service.build import train_kernel_predictor

        info = train_kernel_predictor(args.dataset, out, bench=args.bench, seed=args.seed, ood_bench=args.ood_bench,
                                      **kw)
        t = info["trained_on"]
        print(f"saved {out}: {t['n_train']} training models, validation MAPE {t['val_mape'] * 100:.2f} %, "
              f"Acc(10%) {t['val_acc10'] * 100:.1f} %; correction blend {t['blend']:g}; 90 % interval "
              f"x/÷ {math.exp(info['interval']['floor']):.3f} ({info['interval']['source']}); far-from-training "
              f"threshold {info['ood']['threshold']:.3f}; fit {t['fit_s']:.0f} s")
        return 0
    if args.ood_bench:
        raise InvalidInputError("--ood-bench applies to --predictor kernels")
    info = train_platform_predictor(args.dataset, out, bench=args.bench, seed=args.seed,
                                    progress=not args.no_progress, **kw)
    t = info["trained_on"]
    print(f"saved {out}: {t['n_train']} training models, validation MAPE {t['val_mape'] * 100:.2f} %, "
          f"Acc(10%) {t['val_acc10'] * 100:.1f} %; interval k = {info['interval']['k']:.2f} "
          f"({info['interval']['source']}); fit {t['fit_s']:.0f} s")
    return 0


def _ood_only(args: argparse.Namespace) -> int:
    from archcast.service.build import add_kernel_reference

    if args.predictor != "kernels" or not args.out:
        raise InvalidInputError("--ood-only needs --predictor kernels and --out DIR (an existing kernels checkpoint)")
    e = add_kernel_reference(args.out, args.dataset, bench=args.ood_bench)
    size = (Path(args.out) / e["file"]).stat().st_size
    print(f"{args.out}: far-from-training reference of {e['n_reference']} training models ({e['n_families']} families) "
          f"in {e['file']} ({size / 1024:.0f} KB); threshold {e['threshold']:.3f} (k={e['k']}, q={e['q']:g}); "
          "weights unchanged")
    return 0


def cmd_train_cell(args: argparse.Namespace) -> int:
    """Train a cell predictor on a standard split and save a checkpoint (validation selection)."""
    from archcast import metrics
    from archcast.data import DATASETS
    from archcast.data.splits import random_split
    from archcast.predictors import create_predictor

    ds = DATASETS.get(args.dataset)()
    tr, va, te = random_split(len(ds), args.train_size, args.val_size, args.seed)
    pred = create_predictor(args.predictor, task="accuracy", seed=args.seed, progress=True)
    if not hasattr(pred, "save"):  # refuse before minutes of training, not after
        raise InvalidInputError(f"predictor {args.predictor!r} cannot be saved as a checkpoint")
    pred.fit([ds.graphs[i] for i in tr], ds.y[tr], [ds.graphs[i] for i in va], ds.y[va])
    p = pred.predict([ds.graphs[i] for i in te])
    m = metrics.all_metrics(ds.y[te], p)
    out = pred.save(args.out)
    info = {"dataset": args.dataset, "train_size": args.train_size, "val_size": args.val_size,
            "seed": args.seed, "test_cells": int(len(te)), "test_metrics": m}
    (Path(out) / "training.json").write_text(json.dumps(info, indent=2))
    print(f"saved {out}; test Kendall tau {m['kendall_tau']:.4f} on {len(te)} cells "
          f"(checkpoint chosen on {len(va)} validation cells)")
    return 0


def register(sub: Any) -> None:
    """Add ``train-cell`` and ``train-latency``."""
    s = sub.add_parser("train-latency", help="train a platform's latency predictor from a measured data set")
    s.add_argument("--dataset", default=DEFAULT_DATASET)
    s.add_argument("--out", help="checkpoint directory (default: the user predictor dir for the data set's platform)")
    s.add_argument("--predictor", choices=("archcast", "kernels"), default="archcast",
                   help="archcast: the network-level ensemble (latency-<platform>); kernels: the kernel-level "
                        "model on the runtime's optimised graphs (kernels-<platform>; needs a format-2 data set)")
    s.add_argument("--bench", help="latency benchmark JSON whose LOFO run calibrates the 90 %% interval")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyper-parameter")
    s.add_argument("--calibrate", metavar="DIR", help="only set DIR's interval k from --bench (no training)")
    s.add_argument("--ood-bench", metavar="FAR.json", help="kernels: a `bench far-from-training` JSON whose held-out "
                                                          "errors of warned models the warning quotes")
    s.add_argument("--ood-only", action="store_true",
                   help="kernels: only fit the far-from-training reference of the checkpoint --out on the training "
                        "split its config records (weights untouched)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_train_latency)

    s = sub.add_parser("train-cell", help="train a cell accuracy predictor and save a checkpoint")
    s.add_argument("--dataset", default="nb201")
    s.add_argument("--predictor", default="archcast")
    s.add_argument("--train-size", type=int, default=1563)
    s.add_argument("--val-size", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="checkpoint directory to write")
    s.set_defaults(func=cmd_train_cell)
