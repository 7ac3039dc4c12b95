"""An ``UploadControl`` for tests that call a drive's upload themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from icloudfs.drive.protocol import UploadControl


@dataclass
class OnCommit:
    """Never cancels; calls ``committed(sha256)`` at the commit point."""

    committed: Callable[[str], None]

    def check(self) -> None:
        pass

    def committing(self, sha256: str) -> None:
        self.committed(sha256)


def chained(control: UploadControl | None, then: Callable[[str], None]) -> OnCommit:
    """``control``'s commit, then ``then(sha256)``: for drives that look at the moment of commit."""

    def committed(sha256: str) -> None:
        if control is not None:
            control.committing(sha256)
        then(sha256)

    return OnCommit(committed)
