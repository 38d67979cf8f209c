"""ONNX external data, read safely: only from inside the model file's own directory.

An ONNX tensor may store its bytes in another file (``data_location = EXTERNAL`` with
``external_data`` entries ``location``, ``offset``, ``length``). archcast never needs the float
weights (costs come from dims), so external data is read only for the few small tensors whose
*values* matter (shape settings such as Reshape targets), and only when the model was given as a
path. The rules:

* ``location`` must be a relative path without ``..``, NUL or a drive; absolute paths are refused
  for every model, whatever its source.
* It resolves against the model file's directory, never the working directory; after resolving
  symlinks it must still lie inside that directory, and it must be a regular file (no FIFO, device
  or directory: opening one could block or read a device).
* ``offset``/``length`` must lie inside the file and match the tensor's dims and element size.
* A model given as bytes or as an ``onnx.ModelProto`` has no directory: its external tensors are
  treated as weight-free (dims only), never read.

Every refusal is an :class:`~archcast.errors.InvalidInputError` with one line naming the tensor and
the location.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator

import numpy as np

from archcast.errors import InvalidInputError

MAX_READ_BYTES = 1 << 20  # external tensors read for their values are settings: tiny


def _entries(t) -> dict[str, str]:  # noqa: ANN001 - an onnx.TensorProto
    return {e.key: e.value for e in t.external_data}


def is_external(t) -> bool:  # noqa: ANN001
    """True when the tensor's bytes live in another file."""
    return t.data_location == 1  # TensorProto.EXTERNAL


def _check_location(location: str, name: str, label: str) -> PurePosixPath:
    where = f"{label}: tensor {name!r} stores its data at {location!r}"
    if not location:
        raise InvalidInputError(f"{where}: external data needs a non-empty 'location'")
    if "\x00" in location or len(location) > 1024:
        raise InvalidInputError(f"{where}: not a usable file name")
    win = PureWindowsPath(location)
    posix = PurePosixPath(location.replace("\\", "/"))
    if posix.is_absolute() or win.is_absolute() or win.drive or location.startswith(("/", "\\", "~")):
        raise InvalidInputError(f"{where}: an absolute path; external data must sit next to the model file")
    if ".." in posix.parts:
        raise InvalidInputError(f"{where}: '..' leaves the model's directory; refused")
    return posix


@dataclass(frozen=True)
class ExternalData:
    """Where a model's external data may be read from: ``base_dir`` (None: nowhere)."""

    base_dir: Path | None
    label: str

    def check_all(self, tensors: Iterator) -> None:  # noqa: ANN001
        """Refuse any external tensor whose location is unsafe (no file is read)."""
        for t in tensors:
            if is_external(t):
                self._resolve(t, must_exist=False)

    def _resolve(self, t, must_exist: bool) -> Path | None:  # noqa: ANN001
        loc = _entries(t).get("location", "")
        rel = _check_location(loc, t.name, self.label)
        if self.base_dir is None:
            return None
        base = self.base_dir.resolve()
        target = base.joinpath(*rel.parts)
        try:
            real = target.resolve(strict=False)
        except (OSError, RuntimeError) as e:  # symlink loops
            raise InvalidInputError(f"{self.label}: tensor {t.name!r}: cannot resolve {loc!r}: {e}") from None
        if real != base and base not in real.parents:
            raise InvalidInputError(
                f"{self.label}: tensor {t.name!r} stores its data at {loc!r}, which resolves outside the "
                "model's directory (a symlink?); refused"
            )
        if not os.path.lexists(real):
            if must_exist:
                return None
            return None
        try:
            mode = os.stat(real).st_mode
        except OSError as e:
            raise InvalidInputError(f"{self.label}: tensor {t.name!r}: cannot read {loc!r}: {e.strerror}") from None
        if not stat.S_ISREG(mode):
            raise InvalidInputError(
                f"{self.label}: tensor {t.name!r} stores its data at {loc!r}, which is not a regular file; refused"
            )
        return real

    def read(self, t, dtype: np.dtype) -> np.ndarray | None:  # noqa: ANN001
        """The tensor's values, or None when they are not available (no directory, no file)."""
        path = self._resolve(t, must_exist=True)
        if path is None:
            return None
        entries = _entries(t)
        n = 1
        for d in t.dims:
            n *= int(d)
        want = n * dtype.itemsize
        try:
            offset = int(entries.get("offset", "0") or 0)
            length = int(entries["length"]) if entries.get("length") else want
        except ValueError:
            raise InvalidInputError(f"{self.label}: tensor {t.name!r}: external offset/length are not integers") from None
        size = path.stat().st_size
        if offset < 0 or length != want or offset + length > size:
            raise InvalidInputError(
                f"{self.label}: tensor {t.name!r}: external data (offset {offset}, length {length}) does not fit "
                f"its dims {tuple(t.dims)} ({want} bytes) in a file of {size} bytes"
            )
        if want > MAX_READ_BYTES:
            return None
        # O_NONBLOCK: were the file swapped for a FIFO after the check, open would not block.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InvalidInputError(f"{self.label}: tensor {t.name!r}: {entries['location']!r} is not a regular file")
            os.lseek(fd, offset, os.SEEK_SET)
            data = os.read(fd, want)
        finally:
            os.close(fd)
        if len(data) != want:
            raise InvalidInputError(f"{self.label}: tensor {t.name!r}: external data file is shorter than declared")
        return np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(tuple(int(d) for d in t.dims))


__all__ = ["ExternalData", "MAX_READ_BYTES", "is_external"]
