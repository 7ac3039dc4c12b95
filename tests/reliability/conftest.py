"""Reliability tests reuse the FUSE fixtures (real mounts, emulator-backed drives)."""

from tests.fuse.conftest import any_mount, fuse_emulator, icloud_view, mount_factory, shared_emulator

__all__ = ["any_mount", "fuse_emulator", "icloud_view", "mount_factory", "shared_emulator"]
