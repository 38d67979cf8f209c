"""Reading a user's input file with one set of checks and messages (ONNX files, graph JSON files).

:func:`read_regular_file` refuses, with one line naming the file, a path that is missing or cannot be
a path, a directory, something other than a regular file (a FIFO would block the read), a file over
the caller's size limit, and a file the OS will not read.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from archcast.errors import InvalidInputError


def shorten(text: str, n: int = 120) -> str:
    """``text``, cut to ``n`` characters with its length said when longer (for error messages)."""
    return text if len(text) <= n else text[:n] + f"... ({len(text)} chars)"


def os_reason(e: BaseException) -> str:
    """A short reason for an OS error (its strerror, else its first line)."""
    return getattr(e, "strerror", None) or str(e).splitlines()[0][:80] or type(e).__name__


def read_regular_file(path: Path, label: str, max_bytes: int, too_big: Callable[[int], str]) -> bytes:
    """The bytes of the regular file ``path``; :class:`InvalidInputError` ``"{label} ..."`` otherwise.

    ``too_big(size)`` says why a file of ``size`` bytes (over ``max_bytes``) is refused."""
    try:
        st = path.stat()
    except (OSError, ValueError) as e:  # ENAMETOOLONG, ELOOP, NUL bytes...
        reason = "does not exist" if isinstance(e, FileNotFoundError) else f"cannot be read ({os_reason(e)})"
        raise InvalidInputError(f"{label} {reason}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInputError(f"{label} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(f"{label} is not a regular file (a FIFO, socket or device); refused")
    if st.st_size > max_bytes:
        raise InvalidInputError(f"{label} {too_big(st.st_size)}")
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"{label} cannot be read ({os_reason(e)})") from None


__all__ = ["os_reason", "read_regular_file", "shorten"]
