"""Many processes reading and writing at once, folders renamed under open files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

from tests.fuse.conftest import LiveMount

WORKER = textwrap.dedent(
    """
    import hashlib, os, random, sys
    root, me = sys.argv[1], int(sys.argv[2])
    rng = random.Random(me)
    mine = os.path.join(root, f"w{me}.bin")
    data = b""
    for step in range(40):
        if step == 0 or rng.random() < 0.5:
            data = rng.randbytes(rng.choice([10, 5000, 300000]))
            with open(mine, "wb") as f:
                f.write(data)
        with open(mine, "rb") as f:
            assert f.read() == data, f"worker {me} step {step}: own file differs"
        with open(os.path.join(root, "shared.bin"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sys.argv[3], "shared file differs"
    print(hashlib.sha256(data).hexdigest())
    """
)


def test_processes_read_and_write_same_and_different_files(any_mount: LiveMount) -> None:
    shared = os.urandom(2 * 1024 * 1024)
    (any_mount.path / "shared.bin").write_bytes(shared)
    digest = hashlib.sha256(shared).hexdigest()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(any_mount.path), str(n), digest],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    results = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0] * 6, [err for _, err in results]
    finals = [out.strip() for out, _ in results]
    any_mount.settle(120)
    for n, final in enumerate(finals):
        if final != hashlib.sha256(b"").hexdigest():
            assert hashlib.sha256(any_mount.drive.content(f"w{n}.bin")).hexdigest() == final
    assert hashlib.sha256(any_mount.drive.content("shared.bin")).hexdigest() == digest


def test_rename_a_folder_while_files_inside_are_open(any_mount: LiveMount) -> None:
    folder = any_mount.path / "project"
    folder.mkdir()
    (folder / "stays-open.txt").write_bytes(b"start\n")
    any_mount.settle()
    with open(folder / "stays-open.txt", "ab") as handle:
        handle.write(b"before rename\n")
        os.rename(folder, any_mount.path / "renamed")
        handle.write(b"after rename\n")
    expected = b"start\nbefore rename\nafter rename\n"
    assert (any_mount.path / "renamed" / "stays-open.txt").read_bytes() == expected
    any_mount.settle()
    assert any_mount.drive.names() == ["renamed"]
    assert any_mount.drive.content("renamed/stays-open.txt") == expected
