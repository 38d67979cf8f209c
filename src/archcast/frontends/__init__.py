"""Frontends: read a network (ONNX, PyTorch, saved graph JSON, NAS cell string) as a NetGraph.

:func:`load_graph` picks the frontend from the source; each frontend imports its heavy dependency
(torch) only when used.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

from archcast.errors import InvalidInputError
from archcast.frontends.files import read_regular_file, shorten
from archcast.graph.ir import NetGraph


def _is_instance(source: Any, module: str, cls: str) -> bool:
    """isinstance check against ``module.cls`` without importing ``module``."""
    mod = sys.modules.get(module)
    return mod is not None and isinstance(source, getattr(mod, cls))


MAX_PATH_CHARS = 4096  # longer strings are never tried as paths (ENAMETOOLONG)
MAX_JSON_BYTES = 1 << 30


def _stat(path: Path) -> os.stat_result | None:
    """``os.stat`` of a path, or None when it does not exist or cannot be a path (too long, NUL...)."""
    try:
        return path.stat()
    except (OSError, ValueError):
        return None


def _could_be_path(source: str) -> bool:
    return len(source) <= MAX_PATH_CHARS and "\x00" not in source


def _no_options(what: str, kw: dict[str, Any]) -> None:
    given = sorted(k for k, v in kw.items() if v is not None)
    if given:
        raise InvalidInputError(f"{what} takes no options; got {', '.join(given)}")


def load_graph(source: Any, **kw: Any) -> NetGraph:
    """Read ``source`` as a validated :class:`NetGraph`.

    Dispatch: ``NetGraph`` → itself; ``onnx.ModelProto``, bytes, an
    :class:`~archcast.frontends.onnx_file.OnnxFile` or a path ending ``.onnx`` →
    :func:`~archcast.frontends.onnx.load_onnx` (``input_shapes=``, ``name=``); a ``torch.nn.Module``
    → :func:`~archcast.frontends.torch.load_torch` (``example_input=``, ``name=``); a path ending
    ``.json`` → :meth:`NetGraph.from_json`; a string containing ``|`` that is not a file → a
    NAS-Bench-201 cell string. Options set to None are ignored where a reader takes none.
    """
    from archcast.frontends.onnx_proto import is_model_proto

    if isinstance(source, NetGraph):
        return source.validate()
    if isinstance(source, (bytes, bytearray)) or is_model_proto(source):
        from archcast.frontends.onnx import load_onnx

        return load_onnx(source, **kw)
    if _is_instance(source, "torch.nn", "Module"):
        from archcast.frontends.torch import load_torch

        if kw.get("example_input") is None:
            raise InvalidInputError(
                f"load_graph of a torch.nn.Module ({type(source).__name__}) needs example_input=, a tensor "
                "(or tuple of tensors) with the input shape, e.g. torch.randn(1, 3, 224, 224)"
            )
        return load_torch(source, **kw)
    if isinstance(source, str) and not _could_be_path(source):
        if "|" in source:
            from archcast.frontends.cells import nb201_graph

            _no_options("a NAS-Bench-201 cell string", kw)
            return nb201_graph(source)
        raise InvalidInputError(
            f"cannot read a graph from a string of {len(source)} characters: it is too long (or holds a NUL) "
            "to be a path, and it is not a NAS-Bench-201 cell string"
        )
    if (isinstance(source, str) and "|" in source
            and not source.lower().endswith((".onnx", ".json")) and _stat(Path(source)) is None):
        from archcast.frontends.cells import nb201_graph

        _no_options("a NAS-Bench-201 cell string", kw)
        return nb201_graph(source)
    if _is_instance(source, "archcast.frontends.onnx_file", "OnnxFile"):  # a file read once (read_onnx_file)
        from archcast.frontends.onnx import load_onnx

        return load_onnx(source, **kw)
    if isinstance(source, (str, Path)):
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            from archcast.frontends.onnx import load_onnx

            return load_onnx(path, **kw)
        if suffix == ".json":
            _no_options("a graph JSON file", kw)
            return NetGraph.from_json(_read_json_file(path)).validate()
        raise InvalidInputError(
            f"cannot tell how to read {shorten(str(source))!r}: expected a .onnx or .json file, a NAS-Bench-201 "
            "cell string ('|op~0|+|...|'), an onnx.ModelProto, ONNX bytes or a torch.nn.Module"
        )
    raise InvalidInputError(
        f"cannot read a graph from a {type(source).__name__}; expected a path (.onnx/.json), ONNX bytes, "
        "an onnx.ModelProto, a torch.nn.Module, a NetGraph or a NAS-Bench-201 cell string"
    )


def _read_json_file(path: Path) -> str:
    label = f"graph JSON file {shorten(str(path))!r}"
    data = read_regular_file(path, label, MAX_JSON_BYTES,
                             lambda size: f"is {size / 2**30:.1f} GiB; graph JSON over 1 GiB is refused")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{label} is not UTF-8 text (byte {e.start}); graph JSON is UTF-8") from None


__all__ = ["load_graph"]
