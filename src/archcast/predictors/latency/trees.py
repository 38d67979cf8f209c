"""LightGBM regression trees evaluated with NumPy, so that predicting never imports LightGBM.

``import lightgbm`` costs about a second here (it pulls scikit-learn in); the kernel predictor's
correction is 200 small trees. :func:`trees_from_booster` flattens a fitted booster's
``dump_model()`` into arrays once (at save time, stored as JSON); :class:`NumpyTrees` sums the
leaves. It follows LightGBM's rules: numerical splits ``x <= threshold`` go left; a missing value
(NaN, with ``missing_type`` NaN; NaN or 0 with ``Zero``; with ``None`` NaN counts as 0) takes the
node's default direction; a categorical split sends ``int(x)`` in its category set left and
everything else (negative, NaN, unseen) right. A parity test compares it with ``Booster.predict``.

:func:`write_correction` / :func:`read_correction` are the correction's two checkpoint files (the
LightGBM text model and these trees as JSON); a model loaded as :class:`NumpyTrees` saves again
from the spec it keeps, with the LightGBM file copied from its source checkpoint when that is there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from archcast.errors import CheckpointError

_MISSING = {"None": 0, "Zero": 1, "NaN": 2}


def trees_from_booster(booster: Any) -> dict[str, Any]:
    """A JSON-able flat form of ``booster`` (a ``lightgbm.Booster``): per tree, node arrays."""
    out = []
    for t in booster.dump_model()["tree_info"]:
        feat, thr, cat, dleft, miss, left, right, leaves, cats = [], [], [], [], [], [], [], [], []

        def walk(n: dict) -> int:  # returns a node id (>= 0) or ~leaf id (< 0)
            if "leaf_value" in n or "split_feature" not in n:
                leaves.append(float(n.get("leaf_value", 0.0)))
                return ~(len(leaves) - 1)
            i = len(feat)
            feat.append(int(n["split_feature"]))
            is_cat = n["decision_type"] == "=="
            cat.append(int(is_cat))
            cats.append(sorted(int(v) for v in str(n["threshold"]).split("||")) if is_cat else [])
            thr.append(0.0 if is_cat else float(n["threshold"]))
            dleft.append(int(bool(n.get("default_left", False))))
            miss.append(_MISSING.get(str(n.get("missing_type", "None")), 0))
            left.append(0)
            right.append(0)
            left[i] = walk(n["left_child"])
            right[i] = walk(n["right_child"])
            return i

        walk(t["tree_structure"])
        out.append({"feature": feat, "threshold": thr, "categorical": cat, "default_left": dleft,
                    "missing": miss, "left": left, "right": right, "leaf": leaves, "categories": cats})
    return {"format": "archcast-numpy-trees", "version": 1, "trees": out}


class NumpyTrees:
    """The sum of the trees' leaf values for every row of ``x`` (LightGBM's raw prediction)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        if spec.get("format") != "archcast-numpy-trees" or spec.get("version") != 1:
            raise ValueError(f"not an archcast-numpy-trees v1 spec: {spec.get('format')!r} {spec.get('version')!r}")
        self._spec = spec
        self.trees = []
        for t in spec["trees"]:
            arr = {k: np.asarray(t[k], dtype=np.float64 if k in ("threshold", "leaf") else np.int64)
                   for k in ("feature", "threshold", "categorical", "default_left", "missing", "left", "right", "leaf")}
            top = max((max(c) for c in t["categories"] if c), default=-1) + 1
            member = np.zeros((len(t["feature"]), max(top, 1)), dtype=bool)  # node x category -> left
            for i, c in enumerate(t["categories"]):
                member[i, c] = True
            arr["member"] = member
            self.trees.append(arr)

    def to_spec(self) -> dict[str, Any]:
        """The JSON-able spec these trees were built from (:func:`trees_from_booster`'s form)."""
        return self._spec

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = np.zeros(len(x))
        rows = np.arange(len(x))
        for t in self.trees:
            if not len(t["feature"]):  # a single leaf
                out += t["leaf"][0]
                continue
            node = np.zeros(len(x), dtype=np.int64)
            active = np.ones(len(x), dtype=bool)
            while active.any():
                r, n = rows[active], node[active]
                v = x[r, t["feature"][n]]
                nan = np.isnan(v)
                miss = t["missing"][n]
                go_left = v <= t["threshold"][n]
                # missing values: NaN (missing NaN), NaN or 0 (Zero) take the default; None: NaN is 0
                none_nan = nan & (miss == 0)
                go_left[none_nan] = (0.0 <= t["threshold"][n])[none_nan]
                is_missing = (nan & (miss == 2)) | ((nan | (v == 0.0)) & (miss == 1))
                go_left[is_missing] = t["default_left"][n][is_missing].astype(bool)
                catm = t["categorical"][n] == 1
                if catm.any():
                    m = t["member"]
                    vc = v[catm]
                    ok = ~np.isnan(vc) & (vc >= 0) & (vc < m.shape[1])
                    ci = np.where(ok, vc, 0).astype(np.int64)
                    go_left[catm] = ok & m[n[catm], ci]
                nxt = np.where(go_left, t["left"][n], t["right"][n])
                node[active] = nxt
                done = nxt < 0
                out[r[done]] += t["leaf"][~nxt[done]]
                active[r[done]] = False
        return out


def write_correction(model: Any, directory: Path, gbm_file: str, trees_file: str,
                     source_gbm: Path | None = None) -> str | None:
    """Write ``model`` (a ``lightgbm.Booster`` or :class:`NumpyTrees`) into ``directory``: always
    ``trees_file`` (the NumPy trees as JSON), and ``gbm_file`` (LightGBM's text model) from a booster,
    or for NumPy trees a copy of ``source_gbm`` (the file of the checkpoint they were loaded from)
    when it still exists. Returns ``gbm_file`` when it was written, else None."""
    if hasattr(model, "model_to_string"):
        (directory / gbm_file).write_text(model.model_to_string())
        spec = trees_from_booster(model)
    elif isinstance(model, NumpyTrees):
        spec = model.to_spec()
    else:
        raise TypeError(f"a correction must be a lightgbm.Booster or NumpyTrees; got {type(model).__name__}")
    (directory / trees_file).write_text(json.dumps(spec, separators=(",", ":")))
    if hasattr(model, "model_to_string"):
        return gbm_file
    dst = directory / gbm_file
    if source_gbm is not None and source_gbm.is_file():
        if source_gbm.resolve() != dst.resolve():  # saving over its own checkpoint: the file is there
            shutil.copyfile(source_gbm, dst)
        return gbm_file
    return None


def read_correction(directory: Path, trees_file: str | None, gbm_file: str | None) -> Any:
    """The correction of a checkpoint: :class:`NumpyTrees` from ``trees_file`` when there is one
    (loading never imports LightGBM), else a ``lightgbm.Booster`` from ``gbm_file``, else None.

    Raises:
        CheckpointError: the named file cannot be read or decoded.
    """
    if trees_file:
        path = directory / trees_file
        try:
            return NumpyTrees(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"checkpoint correction {str(path)!r} cannot be read: {e}") from None
    if gbm_file:
        import lightgbm as lgb

        path = directory / gbm_file
        try:
            return lgb.Booster(model_str=path.read_text())
        except (OSError, lgb.basic.LightGBMError) as e:
            raise CheckpointError(f"checkpoint correction {str(path)!r} cannot be read: {e}") from None
    return None


__all__ = ["NumpyTrees", "read_correction", "trees_from_booster", "write_correction"]
