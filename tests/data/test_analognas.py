import os
import pickle

import numpy as np
import pytest

from archcast.data import DATASETS, load_dataset
from archcast.data.analognas import METRICS, _parsed, load_analognas, read_anb
from archcast.errors import InvalidInputError, UnknownNameError
from archcast.frontends.cells import nb201_iso_key, nb201_string

NO_PATH = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def nb201():
    _parsed.cache_clear()
    ds = load_analognas()
    before = _parsed.cache_info().misses
    load_analognas("qat_accuracy")
    assert _parsed.cache_info().misses == before  # the pickle is parsed once per process, not per label
    return ds


def test_all_cells_with_percent_labels(nb201):
    assert len(nb201) == 15625 and nb201.space == "nb201"
    assert len(set(nb201.keys)) == 15625
    assert nb201.y.dtype == np.float64 and np.isfinite(nb201.y).all()
    assert 10.0 <= nb201.y.min() and nb201.y.max() < 100.0 and nb201.y.mean() > 50  # percent
    # known entry: the all-skip cell (tuple (0,) * 6) sits at 60.78 %
    i = nb201.keys.index(nb201_string((0,) * 6))
    assert nb201.y[i] == pytest.approx(60.7836)


def test_groups_are_iso_classes(nb201):
    assert len(np.unique(nb201.groups)) == 8765
    for i in range(0, 15625, 1013):
        same = np.flatnonzero(nb201.groups == nb201.groups[i])
        assert {nb201_iso_key(nb201.keys[j]) for j in same} == {nb201_iso_key(nb201.keys[i])}


def test_cells_without_path_score_exactly_ten_percent(nb201):
    no_path = np.array([nb201_iso_key(k) == NO_PATH for k in nb201.keys])
    assert no_path.sum() == 341
    assert set(nb201.y[no_path].tolist()) == {10.0}
    assert (nb201.y == 10.0).sum() == 341  # and no other cell sits at chance


def test_graphs_are_lazy_and_match_keys(nb201):
    g = nb201.graphs[123]
    assert g.meta["arch"] == nb201.keys[123] and len(g.nodes) == 8
    sub = nb201.subset([123, 5])
    assert sub.keys == [nb201.keys[123], nb201.keys[5]] and sub.graphs[0] is g
    assert sub.groups.tolist() == nb201.groups[[123, 5]].tolist()


def test_metrics_and_registry():
    assert "analog_accuracy" in METRICS and "baseline_drift_60" in METRICS
    assert load_analognas("analog_accuracy").y.shape == (15625,)
    with pytest.raises(InvalidInputError, match="unknown AnalogNAS-Bench metric 'acc'; valid: baseline_accuracy"):
        load_analognas("acc")
    assert load_dataset("nb201").name == "nb201/analognas:baseline_accuracy"
    assert "nasbench-graph:cora" in DATASETS and len(DATASETS) == 10
    with pytest.raises(UnknownNameError, match="valid: nasbench-graph:arxiv"):
        load_dataset("nb101")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    path = tmp_path / "evil.anb"
    path.write_bytes(pickle.dumps({(0,) * 6: _Evil()}))
    with pytest.raises(InvalidInputError, match=r"refusing to unpickle global (posix|os|nt)\.system"):
        read_anb(path)
    with pytest.raises(InvalidInputError, match="holds a list"):
        read_anb(pickle.dumps([1, 2]))
