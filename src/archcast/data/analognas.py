"""AnalogNAS-Bench (PyPI ``analog-nasbench``): 15,625 NAS-Bench-201 cells trained on CIFAR-10.

The package ships its data as a pickle (``analognasbench/data.anb``): a dict mapping a 6-int tuple
(see :mod:`archcast.frontends.cells` for the edge order) to an ``Architecture`` object whose
accuracies are in percent and whose drift entries are ``DriftMeasurement(value, uncertainty)``.
Its own loader imports ``pkg_resources``, which current setuptools lacks, so archcast reads the file
with a restricted unpickler that only builds two inert stand-in classes.
"""

from __future__ import annotations

import importlib.util
import io
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from archcast.data.dataset import CellDataset, LazyGraphs
from archcast.errors import InvalidInputError
from archcast.frontends.cells import nb201_graph, nb201_iso_key, nb201_string

ACCURACY_METRICS = ("baseline_accuracy", "ptq_accuracy", "qat_accuracy", "noisy_accuracy", "analog_accuracy")
DRIFT_METRICS = tuple(
    f"{kind}_drift_{t}" for kind in ("baseline", "analog") for t in (60, 3600, 86400, 2592000)
)
METRICS = ACCURACY_METRICS + DRIFT_METRICS
"""Label names; all are accuracies in percent (drift metrics: accuracy after t seconds of drift)."""


class _Record:
    """Stand-in for ``analognasbench.data.Architecture``: holds the pickled ``__dict__`` only."""


class _Drift:
    """Stand-in for ``analognasbench.data.DriftMeasurement`` (``value``, ``uncertainty``)."""


_ALLOWED = {
    ("analognasbench.data", "Architecture"): _Record,
    ("analognasbench.data", "DriftMeasurement"): _Drift,
}


class _AnbUnpickler(pickle.Unpickler):
    """Builds only the two stand-in classes; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED)
            raise InvalidInputError(
                f"refusing to unpickle global {module}.{name} from an AnalogNAS-Bench file; only {allowed} are allowed"
            ) from None


def analognas_path() -> Path:
    """Path of the package's ``data.anb`` (found without importing ``analognasbench``)."""
    spec = importlib.util.find_spec("analognasbench")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError("AnalogNAS-Bench is not installed: pip install analog-nasbench==0.1.3")
    path = Path(next(iter(spec.submodule_search_locations))) / "data.anb"
    if not path.is_file():
        raise InvalidInputError(f"AnalogNAS-Bench data file is missing: {path}")
    return path


def read_anb(source: str | Path | bytes | BinaryIO) -> dict[tuple[int, ...], dict[str, float]]:
    """Parse an AnalogNAS-Bench pickle into ``{tuple: {metric: value}}`` (values in percent).

    ``source`` is a path, the raw bytes, or a binary file. Raises :class:`InvalidInputError` when
    the pickle references any global other than the two AnalogNAS classes, or has another layout.
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            raw = _AnbUnpickler(f).load()
    elif isinstance(source, bytes):
        raw = _AnbUnpickler(io.BytesIO(source)).load()
    else:
        raw = _AnbUnpickler(source).load()
    if not isinstance(raw, dict):
        raise InvalidInputError(f"AnalogNAS-Bench pickle holds a {type(raw).__name__}; expected a dict of cells")
    out: dict[tuple[int, ...], dict[str, float]] = {}
    for key, rec in raw.items():
        if not isinstance(rec, _Record) or not isinstance(key, tuple):
            raise InvalidInputError(f"AnalogNAS-Bench entry {key!r} is a {type(rec).__name__}; expected Architecture")
        d = vars(rec)
        try:
            vals = {m: float(d[m]) for m in ACCURACY_METRICS}
            vals.update({m: float(vars(d[m])["value"]) for m in DRIFT_METRICS})
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInputError(f"AnalogNAS-Bench entry {key!r} lacks a numeric metric ({e})") from None
        out[key] = vals
    return out


@lru_cache(maxsize=1)
def _parsed() -> tuple[tuple[tuple[int, ...], ...], list[str], dict[str, np.ndarray], np.ndarray]:
    """(tuples sorted, canonical strings, {metric: read-only array}, iso-class ids) for the package file."""
    data = read_anb(analognas_path())
    tuples = tuple(sorted(data))
    keys = [nb201_string(t) for t in tuples]
    cols = {}
    for m in METRICS:
        a = np.array([data[t][m] for t in tuples], dtype=np.float64)
        a.flags.writeable = False
        cols[m] = a
    _, groups = np.unique([nb201_iso_key(k) for k in keys], return_inverse=True)
    groups = groups.astype(np.int64)
    groups.flags.writeable = False
    return tuples, keys, cols, groups


def load_analognas(metric: str = "baseline_accuracy") -> CellDataset:
    """All 15,625 NB201 cells of AnalogNAS-Bench with ``metric`` (percent) as label.

    Cells are ordered by their AnalogNAS tuple; ``keys`` are canonical NB201 strings; ``groups``
    are isomorphism-class ids (:func:`~archcast.frontends.cells.nb201_iso_key`, 8,765 classes);
    graphs are built lazily. The file is parsed once per process; ``y`` is a shared read-only array.
    """
    if metric not in METRICS:
        raise InvalidInputError(f"unknown AnalogNAS-Bench metric {metric!r}; valid: {', '.join(METRICS)}")
    _, keys, cols, groups = _parsed()
    return CellDataset(
        graphs=LazyGraphs(keys, nb201_graph),  # type: ignore[arg-type]
        y=cols[metric],
        keys=list(keys),
        space="nb201",
        name=f"nb201/analognas:{metric}",
        groups=groups,
    )
