"""Frontends: read a network (ONNX, PyTorch, saved graph JSON, NAS cell string) as a NetGraph.

:func:`load_graph` picks the frontend from the source; each frontend imports its heavy dependency
(torch) only when used.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from archcast.errors import InvalidInputError
from archcast.graph.ir import NetGraph


def _is_instance(source: Any, module: str, cls: str) -> bool:
    """isinstance check against ``module.cls`` without importing ``module``."""
    mod = sys.modules.get(module)
    return mod is not None and isinstance(source, getattr(mod, cls))


def _no_options(what: str, kw: dict[str, Any]) -> None:
    given = sorted(k for k, v in kw.items() if v is not None)
    if given:
        raise InvalidInputError(f"{what} takes no options; got {', '.join(given)}")


def load_graph(source: Any, **kw: Any) -> NetGraph:
    """Read ``source`` as a validated :class:`NetGraph`.

    Dispatch: ``NetGraph`` → itself; ``onnx.ModelProto``, bytes or a path ending ``.onnx`` →
    :func:`~archcast.frontends.onnx.load_onnx` (``input_shapes=``, ``name=``); a ``torch.nn.Module``
    → :func:`~archcast.frontends.torch.load_torch` (``example_input=``, ``name=``); a path ending
    ``.json`` → :meth:`NetGraph.from_json`; a string containing ``|`` that is not a file → a
    NAS-Bench-201 cell string. Options set to None are ignored where a reader takes none.
    """
    if isinstance(source, NetGraph):
        return source.validate()
    if isinstance(source, (bytes, bytearray)) or _is_instance(source, "onnx", "ModelProto"):
        from archcast.frontends.onnx import load_onnx

        return load_onnx(source, **kw)
    if _is_instance(source, "torch.nn", "Module"):
        from archcast.frontends.torch import load_torch

        return load_torch(source, **kw)
    if (isinstance(source, str) and "|" in source
            and not source.lower().endswith((".onnx", ".json")) and not Path(source).exists()):
        from archcast.frontends.cells import nb201_graph  # type: ignore[import-not-found]

        _no_options("a NAS-Bench-201 cell string", kw)
        return nb201_graph(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            from archcast.frontends.onnx import load_onnx

            return load_onnx(path, **kw)
        if suffix == ".json":
            if not path.is_file():
                raise InvalidInputError(f"graph JSON file {str(path)!r} does not exist")
            _no_options("a graph JSON file", kw)
            return NetGraph.from_json(path.read_text(encoding="utf-8")).validate()
        raise InvalidInputError(
            f"cannot tell how to read {str(source)!r}: expected a .onnx or .json file, a NAS-Bench-201 "
            "cell string ('|op~0|+|...|'), an onnx.ModelProto, ONNX bytes or a torch.nn.Module"
        )
    raise InvalidInputError(
        f"cannot read a graph from a {type(source).__name__}; expected a path (.onnx/.json), ONNX bytes, "
        "an onnx.ModelProto, a torch.nn.Module, a NetGraph or a NAS-Bench-201 cell string"
    )


__all__ = ["load_graph"]
