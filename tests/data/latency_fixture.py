"""A tiny exported latency data set (format 1) shared by tests/data and tests/collect."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from archcast.collect.export import export_latency_dataset
from archcast.collect.runner import profile_samples
from archcast.profile import default_platform
from archcast.store import Store
from archcast.zoo.base import FAMILIES, Family, ZooSample

FAST = {"min_runs": 3, "min_time_s": 0.0, "warmup_runs": 1, "warmup_s": 0.0}


class TinyConvFamily(Family):
    """A conv stack; ``{"fail": true}`` cannot be built."""

    name = "tiny-latency-conv"
    description = "test family of tests/data/test_latency_dataset.py"

    def sample_config(self, rng):
        return {"channels": int(rng.integers(2, 16)), "depth": int(rng.integers(1, 3))}

    def build(self, config, batch_size=1):
        import torch

        if config.get("fail"):
            raise ValueError("this config cannot be built")
        layers, c = [], 3
        for _ in range(config["depth"]):
            layers += [torch.nn.Conv2d(c, config["channels"], 3, padding=1), torch.nn.ReLU()]
            c = config["channels"]
        return torch.nn.Sequential(*layers), (torch.randn(batch_size, 3, 8, 8),)


class TinyMlpFamily(Family):
    name = "tiny-latency-mlp"
    description = "test family of tests/data/test_latency_dataset.py"

    def sample_config(self, rng):
        return {"width": int(rng.integers(4, 64))}

    def build(self, config, batch_size=1):
        import torch

        net = torch.nn.Sequential(torch.nn.Linear(16, config["width"]), torch.nn.ReLU(), torch.nn.Linear(config["width"], 4))
        return net, (torch.randn(batch_size, 16),)


for _fam in (TinyConvFamily, TinyMlpFamily):
    if _fam.name not in FAMILIES:
        FAMILIES.register(_fam.name, _fam)


def make_exported(root: Path) -> Path:
    """A data set of 4 measured models (2 per family), 1 failure and 1 alias in ``root``; tests copy it
    to change it."""
    store = Store(root / "src.db")
    conv, mlp = TinyConvFamily(), TinyMlpFamily()
    samples = [conv.sample(0), mlp.sample(0), conv.sample(1), mlp.sample(1),
               ZooSample(conv.name, 99, {"fail": True}),
               ZooSample(mlp.name, 7, mlp.sample(0).config)]  # same graph as mlp/0: an alias
    report = profile_samples(samples, store, default_platform(), workers=0, progress=False, measure_kw=FAST)
    assert (report.ok, report.failed, report.duplicates) == (4, 1, 1)
    out = export_latency_dataset(store, root / "ds", default_platform().name, measure_kw=FAST)
    store.close()
    return out


def copy(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / "ds"))


def rewrite_csv(path: Path, fn) -> None:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    rows = fn(rows)
    with open(path, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


