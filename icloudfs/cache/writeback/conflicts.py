"""Storing a staged file remotely without ever overwriting a change made elsewhere.

iCloud replaces a file only if the etag the local bytes were based on still holds. When it
does not (or a new file's name is taken), the remote file is compared with what this mount
itself sent before: every upload's SHA-256 is journaled before the request that makes it
appear (the drive hashes the bytes as it sends them and reports the digest first), so an
upload that iCloud stored just before a crash or a lost answer is recognised as ours, not as
someone else's change. Only a real conflict leaves the remote file alone and stores the local
bytes beside it as ``name (conflict YYYY-MM-DD HHMMSS).ext``.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path

from icloudfs.drive import names
from icloudfs.drive.protocol import Drive, UploadControl
from icloudfs.drive.types import Item
from icloudfs.errors import AlreadyExists, Conflict, NotFound

log = logging.getLogger(__name__)

CHUNK = 4 << 20  # bytes hashed per read, local or remote


def store(
    drive: Drive,
    parent: Item,
    base: Item | None,
    name: str,
    source: Path,
    mtime: float,
    attempts: list[str],
    *,
    resumed: bool = False,
    control: UploadControl | None = None,
) -> tuple[Item, bool]:
    """Upload ``source`` as ``name`` (over ``base`` when it has one); returns the stored item
    and whether it went to a conflict copy. ``attempts``: digests of our uploads journaled so
    far; ``resumed``: they were begun before a crash, so strays of theirs may be left;
    ``control``: given to every upload (see ``UploadControl``)."""
    if resumed:
        _trash_strays(drive, parent, name, attempts)
    try:
        if base is None:
            return drive.upload(parent, name, source, mtime, control), False
        try:
            return drive.replace(base, source, mtime, control), False
        except NotFound:  # deleted remotely meanwhile: the local bytes bring it back
            return drive.upload(parent, name, source, mtime, control), False
    except (Conflict, AlreadyExists) as why:
        remote = _remote_file(drive, parent, name)
        if remote is None:
            # Nothing holds the name: the base went (a replace cut short by a crash after its
            # delete, whose repeat iCloud refuses with ETAG_CONFLICT, or someone deleted it), so
            # there is nothing to conflict with; as with NotFound above, the local bytes bring it back.
            log.info("%s: its old version is gone (%s); storing the local one under its name", name, why)
            return drive.upload(parent, name, source, mtime, control), False
        digest = remote_digest(drive, remote)
        if digest == file_digest(source):
            log.info("%s was already stored by an earlier attempt (crash or lost answer)", name)
            return remote, False
        if digest in attempts:
            log.info("%s holds an earlier upload of ours; replacing it", name)
            return drive.replace(remote, source, mtime, control), False
        log.warning(
            "conflict on %s (%s; remote %d bytes, local %d bytes, %d upload(s) of ours known): "
            "keeping the local version as a copy",
            name,
            why,
            remote.size,
            source.stat().st_size,
            len(attempts),
        )
    now = datetime.now()
    for attempt in range(1, 100):
        try:
            copy = drive.upload(parent, conflict_name(name, now, attempt), source, mtime, control)
        except AlreadyExists:
            continue
        log.warning("conflict: %s changed remotely; local version saved as %s", name, copy.name)
        return copy, True
    raise AlreadyExists(f"no free name for a conflict copy of {name}")


def file_digest(path: Path) -> str:
    """sha256 of a local file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remote_digest(drive: Drive, remote: Item) -> str:
    """sha256 of a remote file's content (read through the drive, in chunks)."""
    digest = hashlib.sha256()
    for offset in range(0, remote.size, CHUNK):
        digest.update(drive.read(remote, offset, CHUNK))
    return digest.hexdigest()


def conflict_name(name: str, when: datetime, attempt: int = 1) -> str:
    """``report.txt`` -> ``report (conflict 2026-01-31 235959).txt`` (`` 2``, `` 3``... after)."""
    stem, ext = names.split_extension(name)
    counter = f" {attempt}" if attempt > 1 else ""
    return f"{stem} (conflict {when:%Y-%m-%d %H%M%S}{counter}){ext}"


def _remote_file(drive: Drive, parent: Item, name: str) -> Item | None:
    key = names.key(name)
    listing = drive.list_folders([parent.id])[0]
    return next((c for c in listing.children if names.key(c.name) == key and not c.is_folder), None)


def _trash_strays(drive: Drive, parent: Item, name: str, attempts: list[str]) -> None:
    """An upload to a taken name is stored by iCloud as ``stem 2.ext``, which the drive removes
    at once; a crash in between leaves it. Such a copy holding bytes of ours goes to Recently
    Deleted, not deleted outright: a copy the user made of those same bytes would match too."""
    children = drive.list_folders([parent.id])[0].children
    copies = [c for c in children if not c.is_folder and names.numbered_copy(c.name, name)]
    for copy in copies:
        if remote_digest(drive, copy) in attempts:
            log.info("%s is a copy left by an upload cut short; moving it to the trash", copy.name)
            drive.trash(copy)
