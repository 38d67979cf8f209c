"""On-disk caches of what predicting derives from an ONNX model: its graph IR and its runtime graph.

A repeated ``archcast predict model.onnx`` parses nothing: the model is read once
(:class:`ModelBytes`: the file's bytes and their SHA-256, computed once), and both the user's graph
(:func:`cached_graph`, keyed by the bytes, the archcast version, the IR version, the input shapes
and the default graph name) and the graph onnxruntime executes
(:func:`archcast.service.kernel_predict.cached_runtime_graph`, keyed by the bytes, the platform and
the onnxruntime and archcast versions) are JSON files under :func:`cache_dir`. An entry that cannot
be read or decoded is rebuilt and written again; a cache that cannot be written (read-only, full)
only costs speed. Entries are written to a temporary file and renamed, so a reader never sees half
of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from archcast.errors import ArchcastError
from archcast.graph.ir import NetGraph

CACHE_ENV = "ARCHCAST_CACHE"
T = TypeVar("T")


def cache_dir() -> Path:
    """Where the caches live: ``$ARCHCAST_CACHE`` or the per-user cache directory."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("archcast"))


def model_source(model: Any) -> Any:
    """``model`` if it is an ONNX model (an ``.onnx`` path, bytes, a ModelProto, an
    :class:`~archcast.frontends.onnx_file.OnnxFile` or a :class:`ModelBytes`), else None (a graph JSON,
    a NetGraph, a torch module: no runtime graph, no cache)."""
    from archcast.frontends.onnx_file import OnnxFile
    from archcast.frontends.onnx_proto import is_model_proto

    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    if isinstance(model, (str, Path)):
        return model if str(model).lower().endswith(".onnx") else None
    if isinstance(model, (ModelBytes, OnnxFile)) or is_model_proto(model):
        return model
    return None


@dataclass(frozen=True, eq=False)
class ModelBytes:
    """An ONNX model read once: ``source`` is what the readers take (an
    :class:`~archcast.frontends.onnx_file.OnnxFile` for a path, so its messages, name and external data
    stay the file's; the bytes; or the ModelProto), ``data`` its serialised bytes and ``sha256``
    their hex digest."""

    source: Any = field(repr=False)
    data: bytes = field(repr=False)
    sha256: str

    @property
    def default_name(self) -> str:
        """The graph name :func:`~archcast.frontends.onnx.load_onnx` gives it without ``name=``
        when that comes from outside the bytes (the file stem); empty otherwise."""
        path = getattr(self.source, "path", None)
        return path.stem if isinstance(path, Path) else ""

    @classmethod
    def read(cls, model: Any) -> ModelBytes:
        """Read ``model`` (a path, bytes, a ModelProto or an OnnxFile) once.

        Raises:
            InvalidInputError: the file is missing, a directory or unreadable (the frontend's messages).
        """
        if isinstance(model, ModelBytes):
            return model
        from archcast.frontends.onnx_file import OnnxFile, read_onnx_file

        if isinstance(model, (str, Path)):
            model = read_onnx_file(model)
        if isinstance(model, OnnxFile):
            data = model.data
        elif isinstance(model, (bytes, bytearray)):
            model = data = bytes(model)
        else:
            data = model.SerializeToString()
        return cls(model, data, hashlib.sha256(data).hexdigest())


def cached_json(kind: str, key: Sequence[str], build: Callable[[], T], encode: Callable[[T], Any],
                decode: Callable[[Any], T]) -> T:
    """``build()``'s value, kept as ``<cache_dir>/<kind>/<hash of key>.json``.

    ``encode`` turns the value into JSON data, ``decode`` turns it back (raising on a bad entry,
    which is then rebuilt). ``build``'s errors propagate and nothing is cached for them.
    """
    digest = hashlib.sha256("\x1f".join(key).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    path = cache_dir() / kind / f"{digest}.json"
    try:
        return decode(json.loads(path.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, ArchcastError):
        pass  # missing or damaged: rebuild
    value = build()
    tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")  # one writer per file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(encode(value)))
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError):  # a read-only or full cache only costs speed
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return value


def _shapes_key(input_shapes: Mapping[str, Any] | None) -> str | None:
    """``input_shapes`` as canonical text, or None when it is not a plain mapping of names to
    shapes (the frontend then reports it, uncached)."""
    import numpy as np

    if input_shapes is None:
        return ""
    if not isinstance(input_shapes, Mapping):
        return None
    items: dict[str, Any] = {}
    for k, v in input_shapes.items():
        if not isinstance(k, str):
            return None
        if isinstance(v, str):
            items[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                                                  for d in v):
            items[k] = [int(d) for d in v]
        else:
            return None
    return json.dumps(items, sort_keys=True)


def cached_graph(model: ModelBytes, input_shapes: Mapping[str, Any] | None = None) -> NetGraph:
    """The validated NetGraph of ``model`` (:func:`~archcast.frontends.onnx.load_onnx` with
    ``input_shapes``), from the cache when it was read before."""
    from archcast._version import __version__
    from archcast.graph.ir import IR_VERSION

    def build() -> NetGraph:
        from archcast.frontends.onnx import load_onnx  # the frontend: only on a miss

        return load_onnx(model.source, input_shapes=input_shapes)

    shapes = _shapes_key(input_shapes)
    if shapes is None:
        return build()
    key = ("graph", model.sha256, __version__, str(IR_VERSION), model.default_name, shapes)
    return cached_json("graphs", key, build, NetGraph.to_dict, lambda d: NetGraph.from_dict(d).validate())


__all__ = ["CACHE_ENV", "ModelBytes", "cache_dir", "cached_graph", "cached_json", "model_source"]
