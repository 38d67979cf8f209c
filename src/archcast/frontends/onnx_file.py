"""An ONNX file read once: its bytes with the path they came from (:class:`OnnxFile`).

:func:`read_onnx_file` makes the checks :func:`archcast.frontends.onnx.load_onnx` makes of a path
(missing, a directory, not a regular file, over protobuf's 2 GiB, unreadable), with its messages;
``load_onnx`` reads an ``OnnxFile`` as it reads the path (labels, the default graph name, external
data beside the file), so a caller that also hashes the bytes or hands them on (the prediction
caches, the runtime graph) reads the file once.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from archcast.errors import InvalidInputError

MAX_FILE_BYTES = 2 << 30  # protobuf's own limit on one message


def shorten(text: str, n: int = 120) -> str:
    return text if len(text) <= n else text[:n] + f"... ({len(text)} chars)"


def _os_reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e).splitlines()[0][:80] or type(e).__name__


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
    label = _file_label(path)
    try:
        st = path.stat()
    except (OSError, ValueError) as e:  # ENAMETOOLONG, ELOOP, NUL bytes...
        reason = "does not exist" if isinstance(e, FileNotFoundError) else f"cannot be read ({_os_reason(e)})"
        raise InvalidInputError(f"{label} {reason}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInputError(f"{label} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(f"{label} is not a regular file (a FIFO, socket or device); refused")
    if st.st_size > MAX_FILE_BYTES:
        raise InvalidInputError(f"{label} is over {MAX_FILE_BYTES >> 30} GiB; ONNX protobuf files cannot be")
    try:
        return OnnxFile(path, path.read_bytes())
    except OSError as e:
        raise InvalidInputError(f"{label} cannot be read ({_os_reason(e)})") from None


__all__ = ["MAX_FILE_BYTES", "OnnxFile", "read_onnx_file", "shorten"]
