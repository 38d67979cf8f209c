"""``archcast bench adapt`` on synthetic data: every method and budget is run and summarised."""

from __future__ import annotations

import numpy as np
import torch

from archcast.bench import adapt as adapt_bench
from archcast.frontends.onnx import load_onnx
from archcast.predictors.latency.archcast import ArchcastLatency
from archcast.zoo import export_sample, get_family

torch.set_num_threads(1)


class _DS:
    platform = {"name": "new", "platform_id": "b"}


def test_adapt_bench_runs_every_method(monkeypatch, tmp_path):
    graphs = [load_onnx(export_sample(get_family(f).sample(s)), name=f"{f}{s}")
              for f in ("gcn", "graphsage") for s in range(8)]
    y1 = np.array([0.02 * len(g.nodes) + g.flops / 5e7 + 0.05 for g in graphs])
    tiny = dict(width=8, n_blocks=1, head_hidden=8, epochs=2, ensemble=2)
    base = ArchcastLatency(**tiny).fit(graphs, y1, graphs[:4], y1[:4])
    base.checkpoint_config_ = {"platform": {"name": "old", "platform_id": "a"}}
    y2 = 3.0 * y1  # the "new platform" is 3x slower

    def setup(dataset, base_dir, test_frac):
        perm = np.random.default_rng(0).permutation(len(graphs))
        return {"ds": _DS(), "base": base, "graphs": graphs, "y": y2, "test": np.sort(perm[:6]), "pool": np.sort(perm[6:])}

    monkeypatch.setattr(adapt_bench, "_setup", setup)
    res = adapt_bench.run_adapt_bench("x", "y", budgets=[5, 50], seeds=1, jobs=1, scratch_hparams=tiny,
                                      fine_tune_kw={"epochs": 2}, log=lambda s: None)
    assert res["budgets"] == [5]  # 50 > pool of 10: dropped
    methods = {r["method"] for r in res["rows"]}
    assert methods == {"fine-tune", "fine-tune (k-center)", "fine-tune (random)", "scratch", "scratch (all pool)",
                       "fine-tune (all pool)"}
    assert all(np.isfinite(r["mape"]) and r["seed"] == 0 for r in res["rows"])
    assert res["summary"]["scratch (all pool)@10"]["mape"]["std"] == 0.0  # one seed
    paths = adapt_bench.write(res, tmp_path, "a")
    assert all(p.exists() for p in paths) and "fine-tune" in paths[1].read_text()
