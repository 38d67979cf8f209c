"""Latency data sets: export from a store, load, verify regeneration, retest (noise floor), datasheet, CLI."""

from __future__ import annotations

import csv
import json
import lzma
import shutil
from pathlib import Path

import numpy as np
import pytest

from archcast.cli import main as cli_main
from archcast.data.latency import (
    DATA_FILES,
    LatencyDataset,
    export_latency_dataset,
    load_latency_dataset,
    retest_latency,
    verify_regeneration,
    write_datasheet,
)
from archcast.errors import InvalidInputError
from archcast.profile import Platform, default_platform
from archcast.profile.runner import profile_samples
from archcast.store import Store, StoreError
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
    FAMILIES.register(_fam.name, _fam)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A data set of 4 measured models (2 per family), 1 failure and 1 alias; tests copy it to change it."""
    root = tmp_path_factory.mktemp("latency")
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


def test_export_writes_compact_sorted_files(exported):
    assert {p.name for p in exported.iterdir()} >= {*DATA_FILES, "manifest.json"}
    plat = json.loads((exported / "platform.json").read_text())
    assert plat["platform_id"] == default_platform().platform_id and plat["threads"] == 1 and plat["created"]
    models = list(csv.DictReader(open(exported / "models.csv")))
    assert [(m["family"], m["seed"]) for m in models] == [
        ("tiny-latency-conv", "0"), ("tiny-latency-conv", "1"), ("tiny-latency-mlp", "0"), ("tiny-latency-mlp", "1")]
    assert json.loads(models[0]["generator_config"]) == TinyConvFamily().sample(0).config
    meas = list(csv.DictReader(open(exported / "measurements.csv")))
    assert [m["fingerprint"] for m in meas] == [m["fingerprint"] for m in models]
    for m in meas:  # 5 significant digits at most
        for k in ("latency_ms_median", "latency_ms_min", "latency_cv"):
            assert len(m[k].replace(".", "").replace("-", "").lstrip("0").split("e")[0]) <= 5
        assert m["measured_at"].endswith("Z") and int(m["n_runs"]) >= 3
    (fail,) = list(csv.DictReader(open(exported / "failures.csv")))
    assert fail["seed"] == "99" and "cannot be built" in fail["error"]
    (alias,) = list(csv.DictReader(open(exported / "aliases.csv")))
    assert alias["seed"] == "7" and alias["fingerprint"] == models[2]["fingerprint"]
    with lzma.open(exported / "graphs.jsonl.xz", "rt") as fh:
        assert len(fh.read().splitlines()) == 4
    man = json.loads((exported / "manifest.json").read_text())
    assert man["counts"] == {"models": 4, "failures": 1, "aliases": 1} and man["measure_kw"] == FAST


def test_load_round_trips_records_and_graphs(exported):
    ds = load_latency_dataset(exported)
    assert isinstance(ds, LatencyDataset) and len(ds) == 4 and ds.batch_size == 1
    assert ds.families() == ["tiny-latency-conv", "tiny-latency-mlp"]
    assert ds.platform["platform_id"] == default_platform().platform_id
    lat = ds.latency_ms
    assert lat.shape == (4,) and np.all(lat > 0) and np.all(ds.column("latency_ms_min") <= lat)
    assert [g.fingerprint() for g in ds.graphs()] == [r.fingerprint for r in ds.records]
    assert ds.records[0].sample().config == TinyConvFamily().sample(0).config
    with pytest.raises(InvalidInputError, match="valid: seed"):
        ds.column("host")


def test_export_is_deterministic_and_refuses_empty_platforms(exported, tmp_path):
    store = Store(exported.parent / "src.db")
    again = export_latency_dataset(store, tmp_path / "again", default_platform().platform_id, measure_kw=FAST)
    for name in (*DATA_FILES, "manifest.json"):
        assert (again / name).read_bytes() == (exported / name).read_bytes(), name
    with pytest.raises(StoreError, match="no current ok measurement"):
        export_latency_dataset(store, tmp_path / "none", default_platform().platform_id, batch_size=2)
    with pytest.raises(StoreError, match="no platform 'nope'"):
        export_latency_dataset(store, tmp_path / "none", "nope")


def test_verify_regeneration_finds_nothing_then_a_tampered_config(exported, tmp_path):
    assert verify_regeneration(exported, count=20) == []
    ds_dir = copy(exported, tmp_path)

    def tamper(rows):
        cfg = json.loads(rows[1][4])
        cfg["channels"] += 1
        rows[1][4] = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
        return rows

    rewrite_csv(ds_dir / "models.csv", tamper)
    with pytest.raises(InvalidInputError, match="models.csv differs from the checksum"):
        load_latency_dataset(ds_dir)
    bad = verify_regeneration(load_latency_dataset(ds_dir, verify_checksums=False), count=20)
    assert {m.field for m in bad} == {"config"} and bad[0].seed == 0 and bad[0].family == "tiny-latency-conv"
    assert "channels" in bad[0].line()


def test_verify_reports_a_changed_generator_and_graph_cache(exported, tmp_path):
    ds = load_latency_dataset(copy(exported, tmp_path))
    r = ds.records[2]
    ds.records[2] = type(r)(**{**r.__dict__, "generator_version": "0"})
    ds.records[3] = type(r)(**{**ds.records[3].__dict__, "fingerprint": "0" * 32})
    fields = {(m.seed, m.field) for m in verify_regeneration(ds, count=20)}
    assert fields == {(0, "generator_version"), (1, "graph_cache"), (1, "fingerprint")}


def test_retest_writes_noise_floor_and_datasheet(exported, tmp_path):
    ds_dir = copy(exported, tmp_path)
    nf = retest_latency(ds_dir, count=2, seed=0, workers=0, measure_kw=FAST)
    assert nf["n"] == 2 and nf["n_not_paired"] == 0 and nf["platform_id"] == default_platform().platform_id
    for key in ("mape", "median_ape", "p90_ape", "max_ape"):
        assert 0 <= nf["median_latency"][key] < 10 and 0 <= nf["min_latency"][key] < 10
    assert 0 < nf["median_cv_all"] < 1 and sum(f["n"] for f in nf["per_family"].values()) == 2
    assert json.loads((ds_dir / "noise_floor.json").read_text()) == nf
    rows = list(csv.DictReader(open(ds_dir / "retest.csv")))
    assert len(rows) == 2 and all(r["status"] == "ok" and float(r["retest_median_ms"]) > 0 for r in rows)
    assert load_latency_dataset(ds_dir).fingerprint == load_latency_dataset(exported).fingerprint  # data untouched

    sheet = write_datasheet(ds_dir)
    text = sheet.read_text()
    for needle in ("tiny-latency-conv", "tiny-latency-mlp", "**all**", "test-retest MAPE", "min-runs 3",
                   default_platform().device, "archcast dataset export"):
        assert needle in text, needle
    for png in (ds_dir / "latency_hist.png", ds_dir / "hist" / "tiny-latency-conv.png",
                ds_dir / "hist" / "tiny-latency-mlp.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_retest_refuses_another_platform_and_the_source_store(exported, tmp_path):
    ds = load_latency_dataset(exported)
    other = {**ds.platform, "device": "Some Other CPU"}
    other["platform_id"] = Platform.from_dict(other).platform_id
    moved = LatencyDataset(ds.path, ds.records, other, ds.manifest, ds.failures, ds.aliases)
    with pytest.raises(InvalidInputError, match="is not this machine: .*Some Other CPU"):
        retest_latency(moved, count=1, workers=0, measure_kw=FAST)
    edited = LatencyDataset(ds.path, ds.records, {**ds.platform, "threads": 2}, ds.manifest, ds.failures, ds.aliases)
    with pytest.raises(InvalidInputError, match="edited"):
        retest_latency(edited, count=1, workers=0)
    ds_dir = copy(exported, tmp_path)
    with pytest.raises(InvalidInputError, match="separate --db"):
        retest_latency(ds_dir, count=1, workers=0, db=exported.parent / "src.db", measure_kw=FAST)


@pytest.mark.parametrize("damage, match", [
    (lambda d: shutil.rmtree(d), "is not a directory"),
    (lambda d: (d / "manifest.json").unlink(), "manifest.json is missing"),
    (lambda d: (d / "models.csv").unlink(), "models.csv does not exist"),
    (lambda d: (d / "manifest.json").write_text("{"), "manifest.json is not valid JSON"),
    (lambda d: (d / "measurements.csv").write_text("fingerprint\n"), "measurements.csv differs from the checksum"),
])
def test_bad_directories_are_refused_naming_the_file(exported, tmp_path, damage, match):
    d = copy(exported, tmp_path)
    damage(d)
    with pytest.raises(InvalidInputError, match=match):
        load_latency_dataset(d)


def test_unchecked_damage_is_still_reported_naming_the_file(exported, tmp_path):
    d = copy(exported, tmp_path)
    (d / "graphs.jsonl.xz").write_bytes(b"not xz")
    with pytest.raises(InvalidInputError, match="graphs.jsonl.xz is not a readable xz file"):
        load_latency_dataset(d, verify_checksums=False).graphs()
    rewrite_csv(d / "measurements.csv", lambda rows: [rows[0][:3]] + [r[:3] for r in rows[1:]])
    with pytest.raises(InvalidInputError, match="measurements.csv: missing column.*latency_ms_min"):
        load_latency_dataset(d, verify_checksums=False)
    shutil.copy(exported / "measurements.csv", d / "measurements.csv")
    rewrite_csv(d / "measurements.csv", lambda rows: [rows[0], [*rows[1][:5], "fast", *rows[1][6:]], *rows[2:]])
    with pytest.raises(InvalidInputError, match=r"measurements.csv: line 2: column latency_ms_median = 'fast'"):
        load_latency_dataset(d, verify_checksums=False)


def test_cli_export_verify_and_one_line_errors(exported, tmp_path, capsys):
    db = str(exported.parent / "src.db")
    out = tmp_path / "cli"
    assert cli_main(["dataset", "export", "--db", db, "--platform", default_platform().name, "--out", str(out),
                     "--min-runs", "3", "--min-time", "0", "--no-progress"]) == 0
    assert "4 models in 2 families, 1 failures, 1 aliases" in capsys.readouterr().out
    assert cli_main(["dataset", "verify", str(out), "--count", "1", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("ok:")
    assert cli_main(["dataset", "datasheet", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a directory" in err
    assert cli_main(["dataset", "export", "--db", db, "--platform", "x", "--out", str(out), "--min-runs", "3"]) == 2
    assert "give both --min-runs and --min-time" in capsys.readouterr().err
    assert cli_main(["dataset"]) == 2


def test_train_platform_predictor_and_calibration(exported, tmp_path):
    """The shipped-predictor recipe on a tiny data set: platform, OOD reference, train ops, k from a bench."""
    from archcast.latency.predictors import ArchcastLatency
    from archcast.latency.train import calibrate_checkpoint, train_platform_predictor

    info = train_platform_predictor(exported, tmp_path / "p", progress=False, val_frac=0.5,
                                    width=8, n_blocks=1, head_hidden=8, epochs=1, ensemble=2)
    assert info["platform"]["name"] == default_platform().name and info["interval"]["k"] == pytest.approx(1.645)
    back = ArchcastLatency.load(tmp_path / "p")
    assert back.extra_tensors_["x.reference"].shape[1] == 16 and "Conv" in back.checkpoint_config_["train_ops"]
    bench = tmp_path / "b.json"
    bench.write_text(json.dumps({"protocols": {"lofo": {"archcast": {"interval": {"k_all": [2.0, 3.0], "ensemble": "x"}}}}}))
    assert calibrate_checkpoint(tmp_path / "p", bench) == pytest.approx(2.5)
    assert ArchcastLatency.load(tmp_path / "p").checkpoint_config_["interval"]["k"] == pytest.approx(2.5)
    bench.write_text("{}")
    with pytest.raises(InvalidInputError, match="not a latency benchmark"):
        calibrate_checkpoint(tmp_path / "p", bench)
