"""The profiling runner: resumable, failures recorded, duplicates and dead workers handled."""

from __future__ import annotations

import os

import pytest

from archcast.collect.runner import profile_onnx_files, profile_samples
from archcast.errors import InvalidInputError
from archcast.profile import default_platform
from archcast.store import Store, sample_key
from archcast.zoo.base import FAMILIES, Family, ZooSample

FAST = {"min_runs": 5, "min_time_s": 0.02, "warmup_runs": 2, "warmup_s": 0.01}
NAME = "tiny-runner-test"


class TinyRunnerFamily(Family):
    """Small conv stacks. ``{"fail": true}`` cannot be built; ``{"crash": true}`` kills its process."""

    name = NAME
    description = "test family of tests/profile/test_runner.py"

    def sample_config(self, rng):
        return {"channels": int(rng.integers(2, 64)), "depth": int(rng.integers(1, 4)),
                "size": int(rng.choice([8, 12, 16]))}

    def build(self, config, batch_size=1):
        import torch

        if config.get("fail"):
            raise ValueError("this config cannot be built")
        if config.get("crash"):
            os._exit(3)  # a segfaulting exporter, as far as the runner can tell
        layers, c = [], 3
        for _ in range(config["depth"]):
            layers += [torch.nn.Conv2d(c, config["channels"], 3, padding=1), torch.nn.ReLU()]
            c = config["channels"]
        return torch.nn.Sequential(*layers), (torch.randn(batch_size, 3, config["size"], config["size"]),)


FAMILIES.register(NAME, TinyRunnerFamily)


def rows(store: Store) -> list:
    return store.measurements(current_only=False)


def test_resumable_with_worker_processes_failures_and_a_dead_worker(tmp_path):
    store = Store(tmp_path / "r.db")
    platform = default_platform()
    fam = TinyRunnerFamily()
    crash, fail = ZooSample(NAME, 98, {"crash": True}), ZooSample(NAME, 99, {"fail": True})
    samples = [crash] + [fam.sample(s) for s in range(3)] + [fail]
    first = profile_samples(samples, store, platform, workers=1, progress=False, measure_kw=FAST)
    assert (first.total, first.skipped, first.ok, first.failed) == (5, 0, 3, 2)
    assert first.failures == [(f"{NAME}/98", "worker: process died (exit code 3) while measuring"),
                              (f"{NAME}/99", "export: ValueError: this config cannot be built")]
    assert first.models_per_hour > 0 and first.stage_s["export"] > 0 and first.stage_s["measure"] > 0
    ok = store.measurements(status="ok")
    assert len(ok) == 3 and all(r.latency_ms_median > 0 and r.family == NAME and r.n_nodes for r in ok)
    assert sorted(r.seed for r in ok) == [0, 1, 2]
    failed = {r.fingerprint: r.error for r in store.measurements(status="failed")}
    assert set(failed) == {sample_key(crash), sample_key(fail)} and "cannot be built" in failed[sample_key(fail)]
    n_rows = len(rows(store))

    again = profile_samples(samples, store, platform, workers=1, progress=False, measure_kw=FAST)
    assert (again.skipped, again.ok, again.failed, again.duplicates) == (5, 0, 0, 0)
    assert len(rows(store)) == n_rows  # nothing measured twice


def test_in_process_retry_duplicates_and_files(tmp_path):
    store = Store(tmp_path / "r.db")
    platform = default_platform()
    cfg = {"channels": 4, "depth": 1, "size": 8}
    samples = [ZooSample(NAME, 1, cfg), ZooSample(NAME, 99, {"fail": True})]
    r = profile_samples(samples, store, platform, workers=0, progress=False, measure_kw=FAST)
    assert (r.ok, r.failed) == (1, 1)
    # the same graph under another seed is recognised by its fingerprint, not measured again
    r = profile_samples([ZooSample(NAME, 2, cfg)], store, platform, workers=0, progress=False, measure_kw=FAST)
    assert (r.ok, r.duplicates) == (0, 1)
    r = profile_samples([ZooSample(NAME, 2, cfg)], store, platform, workers=0, progress=False, measure_kw=FAST)
    assert (r.skipped, r.duplicates) == (1, 0)  # the alias is remembered: not even exported again
    # failures are skipped on resume unless retried; a retry keeps the old row as history
    r = profile_samples(samples, store, platform, workers=0, progress=False, measure_kw=FAST)
    assert r.skipped == 2
    r = profile_samples(samples, store, platform, workers=0, progress=False, measure_kw=FAST, retry_failed=True)
    assert (r.skipped, r.failed) == (1, 1)
    assert [x.is_current for x in rows(store) if x.status == "failed"] == [False, True]

    good = tmp_path / "good.onnx"
    from archcast.zoo import export_sample

    good.write_bytes(export_sample(ZooSample(NAME, 3, {"channels": 6, "depth": 2, "size": 8})))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    r = profile_onnx_files([good, bad], store, platform, workers=0, progress=False, measure_kw=FAST)
    assert (r.ok, r.failed) == (1, 1) and "not a readable ONNX model" in r.failures[0][1]
    r = profile_onnx_files([good, bad], store, platform, workers=0, progress=False, measure_kw=FAST)
    assert (r.ok, r.failed, r.duplicates) == (0, 0, 2)


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="batch_size"):
        profile_samples([], Store("sqlite://"), default_platform(), batch_size=0)


def test_remeasure_keeps_history(tmp_path):
    store = Store(tmp_path / "r.db")
    platform = default_platform()
    samples = [ZooSample(NAME, 5, {"channels": 4, "depth": 1, "size": 8})]
    assert profile_samples(samples, store, platform, workers=0, progress=False, measure_kw=FAST).ok == 1
    r = profile_samples(samples, store, platform, workers=0, progress=False, measure_kw=FAST, remeasure=True)
    assert (r.skipped, r.ok, r.duplicates) == (0, 1, 0)
    ok = [x for x in rows(store) if x.status == "ok"]
    assert len(ok) == 2 and [x.is_current for x in ok].count(True) == 1
