"""The content host: signed, cookie-less download and upload URLs, like Apple's CDN (cvws/contentws).

A download URL names the blob of one file version (``/content/<blob>/<name>?e=&w=&s=``):

- a bad signature is 403; past its expiry (``--url-ttl``) 410;
- once the web session it was given to is gone, 421, as the content host answers when the
  web session has expired (the client renews and asks for a new URL);
- once the file changes or is deleted the blob has no owner and the URL answers 404;
- a share of downloads (``--download-redirects``) is answered 330 with a ``Location`` on
  another host name of this server (localhost / 127.0.0.1), as Apple's CDN redirects
  (rclone follows it; ghostops/ICloud-Shared-Album issue 6);
- a zero-byte file is refused (400): Apple does, and clients must not ask (pyicloud returns
  empty content without a request).

Downloads honour one ``Range`` (206 + ``Content-Range``; 416 past the end) and stream from
disk; uploads stream a multipart (pyicloud) or raw (rclone) body to a staging file whose
``receipt`` ``update/documents`` later redeems. Both directions draw on the shared bandwidth bucket.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import secrets
from collections.abc import AsyncIterator
from typing import BinaryIO

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from icloudfs.emulator.context import Emulator, emulator_of
from icloudfs.emulator.multipart import FilePartReader, boundary_of
from icloudfs.emulator.responses import json_response
from icloudfs.emulator.routing import Routes

router = Routes()
_CHUNK = 1 << 20
_THROTTLED_CHUNK = 1 << 18


class Unsatisfiable(Exception):
    """The requested range starts at or past the end of the file."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a single ``bytes=`` range; None means the whole file."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_s, _, last_s = header[6:].strip().partition("-")
    try:
        if not first_s:
            length = int(last_s)
            if length <= 0:
                raise Unsatisfiable
            return max(0, size - length), size - 1
        first = int(first_s)
        last = int(last_s) if last_s else size - 1
    except ValueError:
        return None
    if first >= size or last < first:
        raise Unsatisfiable
    return first, min(last, size - 1)


def _chunk_size(emulator: Emulator) -> int:
    return _THROTTLED_CHUNK if emulator.faults.bucket.rate > 0 else _CHUNK


async def _stream(emulator: Emulator, handle: BinaryIO, first: int, length: int) -> AsyncIterator[bytes]:
    try:
        handle.seek(first)
        left = length
        while left > 0:
            data = handle.read(min(_chunk_size(emulator), left))
            if not data:
                break
            await emulator.faults.bucket.take(len(data))
            emulator.stats.bytes_down += len(data)
            left -= len(data)
            yield data
    finally:
        handle.close()


@router.get("/content/{blob}/{name:path}")
async def download(request: Request, blob: str, name: str) -> Response:
    emulator = emulator_of(request)
    query = request.query_params
    session = query.get("w", "")
    if not emulator.signature_ok(f"/content/{blob}", query.get("e", ""), query.get("s", ""), session):
        return Response("Forbidden: URL not signed", status_code=403)
    if emulator.expired(query.get("e", "")):
        return Response("Gone: URL expired", status_code=410)
    if session and emulator.sessions.web(session) is None:
        return Response("Misdirected: the web session is gone", status_code=421)
    if emulator.store.blob_owner(blob) is None:
        return Response("Not Found: this version no longer exists", status_code=404)
    if not query.get("r") and random.random() < emulator.config.download_redirects:
        return Response(status_code=330, headers={"Location": _elsewhere(request)})
    try:
        handle = open(emulator.store.blob_path(blob), "rb")  # noqa: SIM115 - closed by _stream
    except FileNotFoundError:
        return Response("Not Found", status_code=404)
    size = os.fstat(handle.fileno()).st_size
    if size == 0:
        handle.close()
        return Response("Bad Request: an empty file has nothing to download", status_code=400)
    headers = {"Accept-Ranges": "bytes"}
    try:
        wanted = parse_range(request.headers.get("range"), size)
    except Unsatisfiable:
        handle.close()
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    first, last, status = 0, size - 1, 200
    if wanted is not None:
        first, last = wanted
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(
        _stream(emulator, handle, first, last - first + 1),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


def _elsewhere(request: Request) -> str:
    """This URL on the server's other host name, marked as redirected (no second redirect)."""
    host = request.url.hostname or "127.0.0.1"
    other = "127.0.0.1" if host == "localhost" else "localhost"
    return str(request.url.replace(hostname=other)) + "&r=1"


@router.post("/upload/{zone}/{document}")
async def upload(request: Request, zone: str, document: str) -> Response:
    emulator = emulator_of(request)
    query = request.query_params
    if not emulator.signature_ok(f"/upload/{zone}/{document}", query.get("e", ""), query.get("s", "")):
        return Response("Forbidden: URL not signed", status_code=403)
    if emulator.expired(query.get("e", "")):
        return Response("Gone: URL expired", status_code=410)
    boundary = boundary_of(request.headers.get("content-type", ""))
    # no boundary: the raw bytes, as rclone posts them (backend/iclouddrive/api/drive.go Upload)
    reader = FilePartReader(boundary) if boundary else None
    receipt = secrets.token_hex(16)
    target = emulator.store.staging / receipt
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as out:
        async for chunk in request.stream():
            await emulator.faults.bucket.take(len(chunk))
            emulator.stats.bytes_up += len(chunk)
            data = reader.feed(chunk) if reader else chunk
            out.write(data)
            digest.update(data)
            size += len(data)
    if reader is not None and not reader.done:
        target.unlink(missing_ok=True)
        return json_response({"errorCode": "BAD_REQUEST", "errorReason": "Malformed multipart body"}, 400)
    checksum = base64.b64encode(b"\x01" + digest.digest()[:20]).decode()
    single = {
        "referenceChecksum": checksum,
        "fileChecksum": checksum,
        "wrappingKey": base64.b64encode(os.urandom(16)).decode(),
        "size": size,
    }
    if size:
        single["receipt"] = receipt  # Apple gives no receipt for empty files
    else:
        target.unlink(missing_ok=True)
    return json_response({"singleFile": single})
