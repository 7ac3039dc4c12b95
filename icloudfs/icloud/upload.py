"""Storing a file's bytes: the three requests of an upload, streamed, and never made twice.

1. ``docws upload/web`` gives a document id and a content URL;
2. the bytes go to that URL, streamed from the staged file (pyicloud reads it whole into
   memory), hashed as they go, and stopped by ``control.check``;
3. ``docws update/documents`` makes the file appear. ``control.committing`` is told just
   before, and may still call it off.

A retried ``update/documents`` whose first answer was lost (the connection dropped after
iCloud applied it) must not store the file twice: before sending it again, the folder is
looked up for the document id the first one used, and a file found there is the answer.
Without that, the second ``add_file`` lands as ``name 2``, which ``ICloudDrive.upload`` then
removes and reports as a taken name, though the file was stored.

A file without a known extension goes up as ``application/octet-stream`` (what browsers
send), not as an empty content type.
"""

from __future__ import annotations

import hashlib
import mimetypes
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from pyicloud import PyiCloudService
from pyicloud.services.drive import DriveService

from icloudfs.drive.protocol import UploadControl
from icloudfs.drive.types import Item
from icloudfs.errors import Unavailable
from icloudfs.icloud.answers import answer_of
from icloudfs.icloud.calls import Calls
from icloudfs.icloud.nodes import to_item

Listed = Callable[[str], list[Item]]
"""``listed(folder_id)``: the folder's children as iCloud lists them now."""


class Uploads:
    """The upload requests. See the module note."""

    def __init__(self, calls: Calls, listed: Listed) -> None:
        self.calls, self._listed = calls, listed

    def send(
        self, parent_id: str, name: str, source: Path, mtime: float, control: UploadControl | None
    ) -> Item:
        """Upload ``source`` as ``name`` in the folder; the stored item."""
        zone, parent_docwsid = split_id(parent_id)
        size = source.stat().st_size
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"

        def start(drive: DriveService, api: PyiCloudService) -> tuple[str, str]:
            answer = self.calls.json(
                api,
                "POST",
                "docws",
                f"/ws/{zone}/upload/web",
                {"filename": name, "type": "FILE", "content_type": content_type, "size": size},
                params={**api.params, **drive._get_token_from_cookie()},
            )
            return str(answer[0]["document_id"]), str(answer[0]["url"])

        document_id, url = self.calls.call(start)

        def send(drive: DriveService, api: PyiCloudService) -> tuple[dict[str, Any], str]:
            with source.open("rb") as fh:
                body = _MultipartBody(name, fh, size)
                headers = {**api.session.headers, "Content-Type": body.content_type}
                headers["Content-Length"] = str(len(body))
                check = None if control is None else control.check
                sent = self.calls.http.request(
                    "POST", url, body=body, headers=headers, cookies=api.session.cookies, check=check
                )
            return dict(answer_of(sent)["singleFile"]), body.digest()

        if control is not None:
            control.check()
        stored, digest = self.calls.call(send)
        if control is not None:
            control.committing(digest)
        data: dict[str, Any] = {
            "signature": stored["fileChecksum"],
            "wrapping_key": stored["wrappingKey"],
            "reference_signature": stored["referenceChecksum"],
            "size": stored["size"],
        }
        if stored.get("receipt"):
            data["receipt"] = stored["receipt"]
        command = {
            "data": data,
            "command": "add_file",
            "create_short_guid": True,
            "document_id": document_id,
            "path": {"starting_document_id": parent_docwsid, "path": name},
            "allow_conflict": True,
            "file_flags": {"is_writable": True, "is_executable": False, "is_hidden": False},
            "mtime": int(mtime * 1000),
            "btime": int(time.time() * 1000),
        }
        return self.calls.call(_Commit(self, command, parent_id, zone, name, document_id))

    def stored(self, parent_id: str, document_id: str) -> Item | None:
        """The file of this document id in the folder, if iCloud has it."""
        return next((c for c in self._listed(parent_id) if c.docwsid == document_id), None)


class _Commit:
    """``update/documents`` as one call that may be retried: a retry first looks for what an
    earlier attempt stored (see the module note)."""

    def __init__(
        self,
        uploads: Uploads,
        command: dict[str, Any],
        parent_id: str,
        zone: str,
        name: str,
        document_id: str,
    ) -> None:
        self._uploads, self._command = uploads, command
        self._parent_id, self._zone, self._name, self._document_id = parent_id, zone, name, document_id
        self._sent = False

    def __call__(self, drive: DriveService, api: PyiCloudService) -> Item:
        if self._sent:
            earlier = self._uploads.stored(self._parent_id, self._document_id)
            if earlier is not None:
                return earlier
        self._sent = True
        answer = self._uploads.calls.json(
            api, "POST", "docws", f"/ws/{self._zone}/update/documents", self._command
        )
        return self._item(answer)

    def _item(self, answer: Any) -> Item:
        """The new item from the answer; a listing of the folder if the answer is thin."""
        results = answer.get("results") if isinstance(answer, dict) else None
        document = (results or [{}])[0].get("document")
        if isinstance(document, dict) and document.get("document_id") and document.get("etag"):
            return to_item(
                {
                    "drivewsid": f"FILE::{self._zone}::{document['document_id']}",
                    "docwsid": document["document_id"],
                    "zone": self._zone,
                    "parentId": self._parent_id,
                    "name": document.get("name") or self._name,  # the full name, extension included
                    "etag": document["etag"],
                    "size": document.get("size", 0),
                    "type": document.get("type", "FILE"),
                    "dateModified": _iso(document.get("mtime")),
                }
            )
        found = self._uploads.stored(self._parent_id, self._document_id)
        if found is None:
            raise Unavailable(f"{self._name} was uploaded but does not appear in its folder")
        return found


def split_id(drivewsid: str) -> tuple[str, str]:
    """``FOLDER::zone::docwsid`` -> (zone, docwsid)."""
    _, zone, docwsid = drivewsid.split("::", 2)
    return zone, docwsid


def _iso(milliseconds: Any) -> str | None:
    if not isinstance(milliseconds, int | float):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(milliseconds / 1000))


class _MultipartBody:
    """A multipart/form-data body read from an open file as libcurl asks for it, with a
    known length: the file is never read whole into memory. The file's bytes are hashed as
    they go out (SHA-256 releases the GIL, and the link is slower than it)."""

    def __init__(self, name: str, source: BinaryIO, size: int) -> None:
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        quoted = name.replace('"', "%22")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted}"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        self._length = len(head) + size + len(tail)
        self._parts: list[bytes | BinaryIO] = [head, source, tail]
        self._sha256 = hashlib.sha256()

    def __len__(self) -> int:
        return self._length

    def read(self, size: int) -> bytes:
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                piece, self._parts[0] = part[:size], part[size:]
            else:
                piece = part.read(size)
                self._sha256.update(piece)
            if piece:
                return piece
            self._parts.pop(0)
        return b""

    def digest(self) -> str:
        """SHA-256 of the file's bytes, once all are read."""
        return self._sha256.hexdigest()
