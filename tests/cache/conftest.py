"""Cache tests share a counting in-memory drive."""

from __future__ import annotations

import pytest

from icloudfs.drive.memory import MemoryDrive


@pytest.fixture
def drive() -> MemoryDrive:
    return MemoryDrive()
