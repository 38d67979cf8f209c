"""Checks on uploaded model bytes before anything parses them, each failure a one-line 4xx.

* over the size limit: 413 (the app also stops reading a body past the limit, see
  :class:`BodyLimit`);
* gzip: decompressed in bounded chunks, a stream that grows past the limit is refused (413) — a
  compression bomb never reaches memory; zip archives and other containers: 415;
* empty or not a protobuf ONNX model: 400 (the ONNX frontend names what is wrong).

The bytes are parsed by :func:`archcast.frontends.load_graph` from memory: no path is derived from
a request, and tensors marked as external data are never read for a model given as bytes.
"""

from __future__ import annotations

import zlib
from typing import Any, Awaitable, Callable

from archcast.errors import ArchcastError


class UploadError(ArchcastError):
    """An upload refused before parsing; ``status`` is the HTTP status (400, 413, 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_CONTAINERS = {b"PK\x03\x04": "a zip archive", b"7z\xbc\xaf": "a 7z archive", b"BZh": "a bzip2 stream",
               b"\xfd7zXZ": "an xz stream", b"\x28\xb5\x2f\xfd": "a zstd stream", b"ustar": "a tar archive"}
_CHUNK = 1 << 20


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def model_bytes(data: bytes, max_bytes: int) -> bytes:
    """The ONNX bytes of an upload (gunzipped when gzip), or :class:`UploadError`."""
    if not data:
        raise UploadError(400, "the upload is empty; send an .onnx file")
    if len(data) > max_bytes:
        raise UploadError(413, f"the upload is {_mb(len(data))}; the limit is {_mb(max_bytes)}")
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, max_bytes)
    head = data[:8]
    for magic, what in _CONTAINERS.items():
        if head.startswith(magic) or (magic == b"ustar" and data[257:262] == magic):
            raise UploadError(415, f"the upload is {what}, not an ONNX model; send the .onnx file itself "
                                   "(or gzip it)")
    return data


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out, size, buf = [], 0, data
    try:
        while buf:
            chunk = d.decompress(buf, _CHUNK)
            size += len(chunk)
            if size > max_bytes:
                raise UploadError(413, f"the gzip upload decompresses past the {_mb(max_bytes)} limit "
                                       "(a compression bomb?); refused")
            out.append(chunk)
            buf = d.unconsumed_tail
        tail = d.flush(_CHUNK)
    except zlib.error as e:
        raise UploadError(400, f"the upload starts like gzip but does not decompress ({e})") from None
    if size + len(tail) > max_bytes:
        raise UploadError(413, f"the gzip upload decompresses past the {_mb(max_bytes)} limit; refused")
    if not d.eof:
        raise UploadError(400, "the gzip upload is truncated (the stream does not end)")
    return b"".join(out) + tail


class BodyLimit:
    """ASGI middleware: a request body past ``max_bytes`` (declared or streamed) gets 413 at once."""

    def __init__(self, app: Any, max_bytes: int, overhead: int = 64 * 1024) -> None:
        self.app, self.max_bytes, self.limit = app, max_bytes, max_bytes + overhead  # multipart framing

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, int(declared))
            return
        seen, started, overflow, refused = 0, False, False, False

        async def limited_receive() -> dict:
            nonlocal seen, overflow
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    overflow = True
                    raise _TooLarge(seen)
            return msg

        async def tracked_send(msg: dict) -> None:
            nonlocal started, refused
            if overflow:  # whatever the app makes of the aborted read (400, 500), the answer is 413
                if msg["type"] == "http.response.start" and not refused:
                    refused = True
                    await self._refuse(send, seen, streamed=True)
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            pass
        except Exception:
            if not overflow:
                raise
        if overflow and not refused and not started:
            await self._refuse(send, seen, streamed=True)

    async def _refuse(self, send: Callable, size: int, streamed: bool = False) -> None:
        import json

        what = f"more than {_mb(self.limit)}" if streamed else _mb(size)
        body = json.dumps({"detail": f"the request body is {what}; the upload limit is {_mb(self.max_bytes)} "
                                     "(archcast serve --max-upload-mb)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


__all__ = ["BodyLimit", "UploadError", "model_bytes"]
