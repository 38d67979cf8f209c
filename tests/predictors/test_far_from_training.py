"""The kernel predictor's far-from-training reference (:mod:`archcast.predictors.latency.far`):
features of a tiny runtime graph, the k-NN score against a brute-force one (chunked), the
inner leave-one-family-out threshold on clustered data, the file round trip and its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archcast.errors import CheckpointError, InvalidInputError, NotFittedError
from archcast.graph import NetGraph, Node
from archcast.predictors.latency.far import FEATURES, FILE, FarFromTraining, kernel_ood_features, knn_mean_distance
from archcast.predictors.latency.kernels import CLASSES


def _runtime_graph() -> NetGraph:
    nodes = [Node("c0", "Conv", {}, [(1, 3, 8, 8)], [(1, 8, 8, 8)]),
             Node("r0", "Relu", {}, [(1, 8, 8, 8)], [(1, 8, 8, 8)]),
             Node("c1", "Conv", {}, [(1, 8, 8, 8)], [(1, 8, 8, 8)]), Node("g", "Gemm", {}, [(1, 512)], [(1, 10)])]
    return NetGraph(nodes, [(0, 1), (1, 2), (2, 3)], name="tiny").validate()


def test_features_of_a_tiny_graph_are_log_sizes_and_sqrt_class_shares():
    f = kernel_ood_features(_runtime_graph(), flops=1000, memory_bytes=2000, params=0)
    assert f.shape == (len(FEATURES),) == (4 + len(CLASSES),)
    np.testing.assert_allclose(f[:4], [math.log(1000), math.log(2000), 0.0, math.log(4)])  # params 0 -> log 1
    share = dict(zip(CLASSES, f[4:]))
    assert share["conv"] == pytest.approx(math.sqrt(0.5)) and share["gemm"] == pytest.approx(0.5)
    assert share["elementwise"] == pytest.approx(0.5)  # Relu
    assert sum(v * v for v in share.values()) == pytest.approx(1.0)
    empty = kernel_ood_features(NetGraph([], [], name="empty"), None, None, None)
    assert np.all(empty == 0.0)


def _brute(q, r, k, same=None):
    d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))
    if same is not None:
        d[same] = np.inf
    return np.sort(d, 1)[:, :k].mean(1)


def test_knn_distance_matches_brute_force_in_any_chunk_size_and_excludes_the_own_family():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6))
    fam = np.repeat(np.array(list("abcd")), 10)
    for chunk in (1, 7, 256):
        np.testing.assert_allclose(knn_mean_distance(x[:9], x, 3, chunk=chunk), _brute(x[:9], x, 3), rtol=1e-9)
        got = knn_mean_distance(x, x, 5, query_groups=fam, reference_groups=fam, chunk=chunk)
        np.testing.assert_allclose(got, _brute(x, x, 5, fam[:, None] == fam[None, :]), rtol=1e-9)
    self_out = knn_mean_distance(x, x, 1, exclude_self=True)
    np.testing.assert_allclose(self_out, _brute(x, x, 1, np.eye(40, dtype=bool)), rtol=1e-9)
    # fewer rows left than k: the mean of those left
    few = knn_mean_distance(x[:2], x[:3], 5, query_groups=np.array(["a", "a"]),
                            reference_groups=np.array(["a", "a", "b"]))
    np.testing.assert_allclose(few, np.linalg.norm(x[:2] - x[2], axis=1), rtol=1e-9)


def _clusters(seed=0, per=30):
    """Four families: Gaussian clusters on a ring of radius 3 in the feature space."""
    rng = np.random.default_rng(seed)
    d = len(FEATURES)
    centres = np.zeros((4, d))
    for j in range(4):
        centres[j, 0], centres[j, 1] = 3 * math.cos(j * math.pi / 2), 3 * math.sin(j * math.pi / 2)
    x = np.concatenate([c + rng.normal(scale=0.5, size=(per, d)) for c in centres])
    return x, np.repeat([f"f{j}" for j in range(4)], per)


def test_the_threshold_is_a_quantile_of_the_inner_leave_one_family_out_and_flags_far_points():
    x, fam = _clusters()
    ref = FarFromTraining(k=5, q=0.95).fit(x, fam)
    z = (x - x.mean(0)) / (x.std(0) + 1e-9)
    inner = _brute(z, z, 5, fam[:, None] == fam[None, :])
    assert ref.threshold_ == pytest.approx(float(np.quantile(inner, 0.95)), rel=1e-5)
    assert ref.threshold_at(0.5) < ref.threshold_ and ref.reference_.dtype == np.float32
    near = x[fam == "f1"].mean(0)  # the middle of a training cluster
    far = x.mean(0) + 6 * x.std(0)
    assert not ref.is_far(near) and ref.is_far(far)
    assert ref.score(far) > ref.threshold_ > ref.score(near)
    scores = ref.score(np.stack([near, far]))
    assert scores.shape == (2,) and scores[1] == pytest.approx(ref.score(far))
    # a held-out family in between the clusters is not "far" at the 0.95 quantile: that is what unseen
    # families look like to the reference
    assert np.mean(ref.is_far(np.zeros((5, len(FEATURES))) + x.mean(0))) == 0.0


def test_one_family_falls_back_to_leave_one_model_out():
    x, _ = _clusters(per=12)
    ref = FarFromTraining(k=3).fit(x[:12], ["only"] * 12)
    z = ref.reference_.astype(np.float64)
    assert ref.inner_rule_.startswith("leave-one-model-out")
    assert ref.threshold_ == pytest.approx(float(np.quantile(_brute(z, z, 3, np.eye(12, dtype=bool)), 0.95)), rel=1e-6)


def test_save_load_and_dict_round_trips_score_the_same(tmp_path):
    x, fam = _clusters()
    ref = FarFromTraining(k=4, q=0.9).fit(x, fam)
    path = ref.save(tmp_path)
    assert path.name == FILE and path.stat().st_size < 20_000
    back = FarFromTraining.load(tmp_path)
    probe = x[:7] + 0.3
    np.testing.assert_array_equal(back.score(probe), ref.score(probe))
    assert (back.k, back.q, back.threshold_, back.families_) == (4, 0.9, ref.threshold_, ["f0", "f1", "f2", "f3"])
    again = FarFromTraining.from_dict(ref.to_dict())
    np.testing.assert_allclose(again.score(probe), ref.score(probe), rtol=1e-12)
    with pytest.raises(NotFittedError):
        back.threshold_at(0.5)  # the inner scores are not saved


def test_bad_inputs_and_damaged_files_are_one_line_errors(tmp_path):
    x, fam = _clusters()
    with pytest.raises(NotFittedError):
        FarFromTraining().score(x[0])
    with pytest.raises(InvalidInputError, match="one family per row"):
        FarFromTraining().fit(x, fam[:-1])
    with pytest.raises(InvalidInputError, match="q must be"):
        FarFromTraining(q=1.0).fit(x, fam)
    ref = FarFromTraining().fit(x, fam)
    with pytest.raises(InvalidInputError, match="expected"):
        ref.score(x[0, :5])
    with pytest.raises(CheckpointError, match="cannot be read"):
        FarFromTraining.load(tmp_path)  # no file
    (tmp_path / FILE).write_bytes(b"not an npz")
    with pytest.raises(CheckpointError, match="cannot be read"):
        FarFromTraining.load(tmp_path)
    d = ref.to_dict()
    with pytest.raises(CheckpointError, match="not a kernel OOD reference"):
        FarFromTraining.from_dict({**d, "features": d["features"][:-1]})
    with pytest.raises(CheckpointError, match="damaged"):
        FarFromTraining.from_dict({**d, "threshold": float("nan")})
