"""A mount in a child process, for tests that kill it: ``python -m tests.fuse.mount_child MNT CACHE``.

The drive is seeded deterministically (``seed``), so a test can mount a fresh
drive seeded the same way after the child dies and see the journal resume
against the same ids. On exit the child prints the drive's files as JSON.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from icloudfs.drive.memory import MemoryDrive
from icloudfs.fuse.mount import MountOptions, run_mount


def seed() -> MemoryDrive:
    drive = MemoryDrive()
    drive.add_file("docs/existing.txt", b"remote version\n", mtime=1_700_000_000.0)
    return drive


def main() -> int:
    logging.basicConfig(level=logging.INFO)
    mountpoint, cache_dir, write_back = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    drive = seed()
    options = MountOptions(mountpoint=mountpoint, cache_dir=cache_dir, write_back=write_back)
    code = run_mount(drive, options, on_ready=lambda mount: print("ready", flush=True))
    files = {"docs/" + n: drive.content("docs/" + n).decode() for n in drive.names("docs")}
    print(json.dumps(files), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
