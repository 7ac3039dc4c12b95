"""A Drive for FUSE tests that is the real iCloud backend on the emulator, checked through pyicloud.

The mount uses ``ICloudDrive`` (what users run); the inspection helpers that
tests use to see what reached "iCloud" go through a separate, unmodified
pyicloud client, so a test never checks the backend with itself.
Paths are relative to ``base``, a folder of its own per test.
"""

from __future__ import annotations

import io
from typing import Any

from pyicloud import PyiCloudService
from pyicloud.services.drive import DriveNode

from icloudfs.drive.types import Item
from icloudfs.errors import NotFound
from icloudfs.icloud.account import Account
from icloudfs.icloud.drive import ICloudDrive


class EmulatorView(ICloudDrive):
    """``ICloudDrive`` plus read-back helpers through pyicloud."""

    def __init__(self, account: Account, ca: str, api: PyiCloudService, base: str) -> None:
        super().__init__(account, ca_file=ca)
        self.api = api
        self.base = base
        root = self.root()
        self.base_item = self.mkdir(root, base.strip("/"))

    def _node(self, path: str) -> DriveNode:
        node: DriveNode = self.api.drive.root
        for part in [self.base.strip("/"), *(p for p in path.split("/") if p)]:
            matches = [c for c in node.get_children(force=True) if c.name == part]
            if not matches:
                raise NotFound(f"{path}: no {part!r} in iCloud")
            node = matches[0]
        return node

    def content(self, path: str) -> bytes:
        data: bytes = self._node(path).open().content
        return data

    def names(self, path: str = "") -> list[str]:
        return sorted(child.name for child in self._node(path).get_children(force=True))

    def tree(self, path: str = "") -> dict[str, bytes | None]:
        """Every path below ``path``: a file's bytes, None for a folder (through pyicloud)."""
        found: dict[str, bytes | None] = {}
        pending = [("", self._node(path))]
        while pending:
            prefix, node = pending.pop()
            for child in node.get_children(force=True):
                name = f"{prefix}{child.name}"
                if child.type == "folder":
                    found[name] = None
                    pending.append((f"{name}/", child))
                else:
                    found[name] = child.open().content if child.size else b""
        return found

    def exists(self, path: str) -> bool:
        try:
            self._node(path)
        except NotFound:
            return False
        return True

    def remove(self, path: str) -> None:
        """Delete as another device would (through pyicloud: to the trash)."""
        self._node(path).delete()

    def rename_at(self, path: str, new_name: str) -> None:
        """Rename as another device would (through pyicloud)."""
        self._node(path).rename(new_name)

    def add_folder(self, path: str) -> Item:
        """``mkdir -p`` as another device would (through pyicloud)."""
        node = self._node("")
        for part in (p for p in path.split("/") if p):
            found = [c for c in node.get_children(force=True) if c.name == part]
            if not found:
                node.mkdir(part)
                found = [c for c in node.get_children(force=True) if c.name == part]
            node = found[0]
        return self.stat(str(node.data["drivewsid"]))

    def add_file(self, path: str, data: bytes, **options: Any) -> Item:
        """Create or overwrite a file as another device would (through pyicloud)."""
        folder_path, _, name = path.rstrip("/").rpartition("/")
        folder = self.add_folder(folder_path)
        node = self._node(folder_path)
        for old in [c for c in node.get_children(force=True) if c.name == name]:
            old.delete()
        upload = io.BytesIO(data)
        upload.name = name
        node.upload(upload)
        listing = self.list_folders([folder.id])[0]
        return next(child for child in listing.children if child.name == name)
