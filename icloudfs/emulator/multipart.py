"""A small streaming ``multipart/form-data`` reader: yields the first file part's bytes as they arrive.

Uploads can be 1 GiB, so nothing is buffered beyond one boundary's length; parts
without a ``filename`` (plain form fields) are skipped.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def boundary_of(content_type: str) -> bytes | None:
    if not content_type.lower().startswith("multipart/"):
        return None
    match = _BOUNDARY.search(content_type)
    return match.group(1).encode("latin-1") if match else None


class FilePartReader:
    """Feed it the request body chunk by chunk; each ``feed`` returns file bytes ready to write."""

    def __init__(self, boundary: bytes) -> None:
        self._first = b"--" + boundary
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray()
        self._state = "preamble"
        self._in_file = False
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        out = bytearray()
        while not self.done:
            if self._state == "preamble":
                at = self._buffer.find(self._first)
                if at < 0:
                    return bytes(out)
                del self._buffer[: at + len(self._first)]
                self._state = "after-boundary"
            elif self._state == "after-boundary":
                if len(self._buffer) < 2:
                    return bytes(out)
                if self._buffer[:2] == b"--":  # closing boundary
                    self.done = True
                    break
                self._state = "headers"
            elif self._state == "headers":
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return bytes(out)
                headers = bytes(self._buffer[:end]).decode("utf-8", "replace").lower()
                del self._buffer[: end + 4]
                self._in_file = "filename=" in headers
                self._state = "body"
            else:  # body
                at = self._buffer.find(self._delimiter)
                if at >= 0:
                    if self._in_file:
                        out += self._buffer[:at]
                        self.done = True
                        break
                    del self._buffer[: at + len(self._delimiter)]
                    self._state = "after-boundary"
                    continue
                keep = len(self._delimiter) - 1
                ready = max(0, len(self._buffer) - keep)
                if self._in_file:
                    out += self._buffer[:ready]
                del self._buffer[:ready]
                return bytes(out)
        return bytes(out)
