"""The Drive protocol: what the caches and the filesystem may ask of a backend.

Every method is blocking and thread-safe; failures raise ``icloudfs.errors``
types only. Items are addressed by the ``Item`` last seen, so a backend can pass
its etag along and refuse stale writes with ``Conflict``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from icloudfs.drive.types import Item, Listing, Quota

Arrived = Callable[[int, bytes], None]
"""``arrived(position, piece)``: bytes at ``offset + position`` of a read still under way."""


class UploadControl(Protocol):
    """What an upload in flight asks of the write-back that started it, and tells it.

    ``check`` is called as the bytes go out; it raises ``Cancelled`` when the upload is no longer
    wanted (the file was renamed, deleted or changed again), and the transfer stops there.
    ``committing(sha256)`` comes once the bytes are sent, just before the request that makes
    them appear remotely: the write-back journals the digest there, so after a crash an upload
    that was stored is recognised as ours (hashed as the bytes go out, it costs no read of its
    own). It may raise ``Cancelled`` too; then that request is not sent and nothing appears.
    Past that point an upload cannot be cancelled: it ends as stored or failed.
    """

    def check(self) -> None: ...

    def committing(self, sha256: str) -> None: ...


@runtime_checkable
class Drive(Protocol):
    """A remote drive: iCloud, or a test double."""

    def root(self) -> Item:
        """The top folder of the drive."""
        ...

    def list_folders(self, folder_ids: Sequence[str]) -> list[Listing]:
        """List several folders in one request, in the order asked."""
        ...

    def app_libraries(self) -> list[Item]:
        """The app libraries (Pages, Numbers, ...), each shown as a folder."""
        ...

    def stat(self, item_id: str) -> Item:
        """Fresh metadata of one item."""
        ...

    def read(self, item: Item, offset: int, length: int, arrived: Arrived | None = None) -> bytes:
        """Bytes ``[offset, offset+length)`` of this version of the file (short at EOF).

        ``arrived`` is given the bytes in order as they come in, so a reader waiting for the
        first few need not wait for all; a retry gives them again from position 0.
        """
        ...

    def upload(
        self, parent: Item, name: str, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        """Store a new file from a local path; ``AlreadyExists`` if the name is taken."""
        ...

    def replace(
        self, existing: Item, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        """Store new content for a file: the new bytes are stored before the old go."""
        ...

    def mkdir(self, parent: Item, name: str) -> Item:
        """Create a folder."""
        ...

    def rename(self, item: Item, new_name: str) -> Item:
        """Rename in place."""
        ...

    def move(self, item: Item, new_parent: Item) -> Item:
        """Move to another folder, keeping the name."""
        ...

    def trash(self, item: Item) -> None:
        """Move to Recently Deleted (recoverable)."""
        ...

    def delete(self, item: Item) -> None:
        """Delete for good."""
        ...

    def quota(self) -> Quota | None:
        """Storage use, when the backend knows it."""
        ...
