"""Kernel profiles for the store: the combination over passes (the data set's kernel labels) and
the import of a data set's kernels.csv.xz (idempotent, graphs added, damaged files named)."""

from __future__ import annotations

import lzma

import pytest

from archcast.collect.kernel_profiles import combine_passes, import_kernels, is_label_pass, profiles_from_kernel_times
from archcast.data.latency_dataset import KERNELS_FILE, load_latency_dataset
from archcast.errors import InvalidInputError
from archcast.store import Store
from tests.collect.kernel_dataset import PASSES, PLATFORM, make_kernel_dataset, rewrite_manifest


def test_combine_passes_takes_the_median_over_passes_of_each_pass_minimum():
    prof = combine_passes({"c/p2": [["a", "Conv", 12.0, 10.0], ["b", "Relu", 2.0, None]],
                           "c/p1": [["a", "FusedConv", 11.0, 9.0], ["b", "Relu", 3.0, 2.5]],
                           "c/p10": [["a", "Conv", 30.0, 20.0]]},
                          {"c/p1": 20.0, "c/p2": 16.0, "c/p10": None})
    assert prof["kernels"] == [("a", "Conv", 10.0), ("b", "Relu", 2.25)]  # b: p1 min 2.5, p2 median 2.0
    assert prof["coverage"] == pytest.approx((14.0 / 20.0 + 14.0 / 16.0) / 2)  # p10 has no run time
    assert (prof["pass_id"], prof["n_passes"]) == ("c/p10", 3)  # passes in k order, not text order
    assert combine_passes({"c/p1": []}) is None and combine_passes({}) is None
    assert is_label_pass("c/p3", "c") and not is_label_pass("c/retest1", "c") and not is_label_pass("d/p1", "c")


def test_profiles_equal_the_data_sets_kernel_labels(tmp_path):
    ds = load_latency_dataset(make_kernel_dataset(tmp_path / "ds"))
    profiles = profiles_from_kernel_times(ds.iter_kernels(), PASSES)
    labels = ds.kernel_labels()
    assert set(profiles) == set(labels) and len(profiles) == 2
    for fp, prof in profiles.items():
        assert {k: us for k, _, us in prof["kernels"]} == pytest.approx(labels[fp])
    fp0, fp1 = (r.fingerprint for r in ds.records[:2])
    assert dict((k, us) for k, _, us in profiles[fp0]["kernels"]) == {"fused conv": 92.0, "ReorderOutput": 2.25}
    assert dict((k, us) for k, _, us in profiles[fp1]["kernels"])["fused conv"] == 97.5  # p1 had no minimum


def test_import_stores_each_profile_once_with_its_graph(tmp_path):
    ds_dir = make_kernel_dataset(tmp_path / "ds")
    store = Store(tmp_path / "s.db")
    c = import_kernels(store, ds_dir)
    assert c == {"models": 2, "added": 2, "replaced": 0, "unchanged": 0, "graphs_added": 2, "without_kernels": 1}
    ds = load_latency_dataset(ds_dir)
    labels = ds.kernel_labels()
    for r in ds.records[:2]:
        p = store.kernel_profile(r.fingerprint, PLATFORM)
        assert p.times_us() == pytest.approx(labels[r.fingerprint])
        assert (p.coverage, p.pass_id, p.n_passes, p.source) == (0.95, "camp/p2", 2, "dataset")
        assert [k.op_type for k in p.kernels] == ["FusedConv", "ReorderOutput"]
        info = store.graph_info(r.fingerprint)
        assert (info["family"], info["seed"], info["has_ir"]) == ("tiny-kernels", r.seed, True)
    assert store.kernel_profile(ds.records[2].fingerprint, PLATFORM) is None
    assert [p.name for p in store.platforms()] == [PLATFORM.name]
    # again: nothing new
    again = import_kernels(store, ds_dir)
    assert (again["added"], again["replaced"], again["unchanged"], again["graphs_added"]) == (0, 0, 2, 0)


def test_import_errors_name_the_file_and_the_fix(tmp_path):
    store = Store(tmp_path / "s.db")
    ds_dir = make_kernel_dataset(tmp_path / "ds")
    kernels = ds_dir / KERNELS_FILE
    good = kernels.read_bytes()
    kernels.write_bytes(good[: len(good) // 2])  # truncated: the manifest's checksum catches it
    with pytest.raises(InvalidInputError, match="kernels.csv.xz differs from the checksum .* re-export"):
        import_kernels(store, ds_dir)
    rewrite_manifest(ds_dir)  # a damaged file the checksums vouch for: the reader names it
    with pytest.raises(InvalidInputError, match="kernels.csv.xz is not a readable CSV file"):
        import_kernels(store, ds_dir)
    kernels.unlink()
    with pytest.raises(InvalidInputError, match="kernels.csv.xz does not exist; re-export"):
        import_kernels(store, ds_dir)
    with pytest.raises(InvalidInputError, match="is not a directory"):
        import_kernels(store, tmp_path / "nothing")
    assert store.stats()["kernel_profiles"] == 0 and store.stats()["graphs"] == 0


def test_kernels_of_a_model_the_data_set_does_not_list_are_refused(tmp_path):
    from archcast.collect.dataset_files import write_csv
    from archcast.data.latency_dataset import KERNEL_COLUMNS

    ds_dir = make_kernel_dataset(tmp_path / "ds")
    with lzma.open(ds_dir / KERNELS_FILE, "rt", encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split(",") for line in fh][1:]
    write_csv(ds_dir / KERNELS_FILE, KERNEL_COLUMNS, rows + [["f" * 32, "camp/p1", "k", "Conv", "1", ""]], xz=True)
    rewrite_manifest(ds_dir)
    with pytest.raises(InvalidInputError, match="kernels of 1 model.* that models.csv does not list"):
        import_kernels(Store(tmp_path / "s.db"), ds_dir)
