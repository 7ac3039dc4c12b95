"""The seam between the filesystem and the backends: no HTTP and no FUSE here."""

from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item, ItemKind, Listing, Quota

__all__ = ["Drive", "Item", "ItemKind", "Listing", "Quota"]
