"""CLI tests may mount too (the real FUSE fixtures)."""

from tests.fuse.conftest import mount_factory

__all__ = ["mount_factory"]
