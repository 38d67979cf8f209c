"""An ONNX file read once: its bytes with the path they came from (:class:`OnnxFile`).

:func:`read_onnx_file` makes the checks :func:`archcast.frontends.onnx.load_onnx` makes of a path
(missing, a directory, not a regular file, over protobuf's 2 GiB, unreadable), with its messages;
``load_onnx`` reads an ``OnnxFile`` as it reads the path (labels, the default graph name, external
data beside the file), so a caller that also hashes the bytes or hands them on (the prediction
caches, the runtime graph) reads the file once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from archcast.frontends.files import read_regular_file, shorten

MAX_FILE_BYTES = 2 << 30  # protobuf's own limit on one message


@dataclass(frozen=True, eq=False)
class OnnxFile:
    """An ONNX file's bytes, read once (:func:`read_onnx_file`), with the path they came from."""

    path: Path
    data: bytes = field(repr=False)

    @property
    def label(self) -> str:
        return _file_label(self.path)


def _file_label(path: Path) -> str:
    return f"ONNX file {shorten(str(path))!r}"


def read_onnx_file(path: str | Path) -> OnnxFile:
    """The bytes of the ONNX file ``path``, with ``load_onnx``'s checks and messages (missing,
    a directory, not a regular file, over 2 GiB, unreadable: :class:`InvalidInputError`)."""
    path = Path(path)
    data = read_regular_file(path, _file_label(path), MAX_FILE_BYTES,
                             lambda size: f"is over {MAX_FILE_BYTES >> 30} GiB; ONNX protobuf files cannot be")
    return OnnxFile(path, data)


__all__ = ["MAX_FILE_BYTES", "OnnxFile", "read_onnx_file", "shorten"]
