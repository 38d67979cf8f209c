"""Reading latency data sets: records, graphs, damage reported naming the file, v1 and v2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from archcast.data.latency_dataset import (
    LatencyDataset,
    load_latency_dataset,
)
from archcast.errors import InvalidInputError
from archcast.profile import default_platform
from tests.data.latency_fixture import (
    TinyConvFamily,
    copy,
    make_exported,
    rewrite_csv,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return make_exported(tmp_path_factory.mktemp("latency"))


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


def test_train_platform_predictor_and_calibration(exported, tmp_path):
    """The shipped-predictor recipe on a tiny data set: platform, OOD reference, train ops, k from a bench."""
    from archcast.predictors.latency.archcast import ArchcastLatency
    from archcast.service.build import calibrate_checkpoint, train_platform_predictor

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


def test_the_reference_v1_data_set_still_loads():
    ds = load_latency_dataset(Path(__file__).resolve().parents[2] / "datasets" / "ort-cpu-1t")
    assert ds.format_version == 1 and len(ds) == 6775 and len(ds.families()) == 19
    assert np.array_equal(ds.latency_ms, ds.column("latency_ms_median"))  # the v1 label is the median
    with pytest.raises(InvalidInputError, match="format 1: it has no kernel tables"):
        ds.kernels()
