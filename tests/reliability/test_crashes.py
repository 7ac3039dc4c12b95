"""``kill -9`` of the mount daemon at random points of uploads, many times: after a remount every
file that was closed before the kill is in iCloud exactly once, with the right bytes.

The daemon is the real ``icloudfs mount --foreground`` process against the emulator, with the
link slowed down so kills land before, during and after transfers and in the middle of the
upload-then-swap of replaced files.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulator import Emulator, start_emulator

ROUNDS = 8
SEEDS = [7, 11, 23]
SIZES = [1_000, 200_000, 1_500_000]
Write = tuple[str, int, float]  # name, size, pause after it


def plan(seed: int) -> list[tuple[list[Write], float]]:
    """The rounds of one seed: the writes (new files and replacements of the first five names)
    and the pause before the kill. Fixed by the seed, so the README can quote exact totals."""
    rng = random.Random(seed)
    seen: list[str] = []
    rounds = []
    for round_ in range(ROUNDS):
        writes = []
        for written in range(rng.randint(4, 16)):
            name = rng.choice([f"new-{round_}-{written}.bin", *seen[:5]])
            if name not in seen:
                seen.append(name)
            writes.append((name, rng.choice(SIZES), rng.uniform(0.0, 0.15)))
        rounds.append((writes, rng.uniform(0.0, 0.6)))
    return rounds


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with start_emulator(tmp_path / "emu", "--bandwidth-mbps", "40") as emu:
        yield emu


def icloudfs(emu: Emulator, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "icloudfs", *args, "--endpoint", emu.url, "--ca-file", emu.ca]
    return subprocess.Popen(command, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[str]]]:
    """Every daemon a test starts is killed and its mount detached at the end, pass or fail."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for daemon in started:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        mountpoint = daemon.args[4]  # type: ignore[index]
        subprocess.run(["fusermount3", "-uz", str(mountpoint)], capture_output=True)


def mount(
    emu: Emulator, mountpoint: Path, log: Path, daemons: list[subprocess.Popen[str]]
) -> subprocess.Popen[str]:
    with log.open("a") as out:
        daemon = icloudfs(
            emu,
            "mount",
            str(mountpoint),
            "--foreground",
            "--write-back",
            "0.05s",
            "--folder",
            "/crash",
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not os.path.ismount(mountpoint):
        assert daemon.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    return daemon


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_9_at_random_points_loses_nothing(
    seed: int,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    daemons: list[subprocess.Popen[str]],
) -> None:
    monkeypatch.setenv("ICLOUDFS_CONTROL_ADDR", "127.0.0.1:0")
    login = emulator.cli_login()
    assert login.returncode == 0, login.stderr
    checker = emulator.signed_in(tmp_path / "checker")
    checker.drive.root.mkdir("crash")
    mountpoint, log = tmp_path / "mnt", tmp_path / "daemon.log"
    mountpoint.mkdir()
    closed: dict[str, bytes] = {}
    for writes, pause_before_kill in plan(seed):
        daemon = mount(emulator, mountpoint, log, daemons)
        for name, size, pause in writes:
            data = os.urandom(size)
            (mountpoint / name).write_bytes(data)  # returns once journaled
            closed[name] = data
            time.sleep(pause)  # so kills land before, during and after uploads and swaps
        time.sleep(pause_before_kill)
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait()
        subprocess.run(["fusermount3", "-uz", str(mountpoint)], capture_output=True)
    daemon = mount(emulator, mountpoint, log, daemons)  # resumes whatever the journal holds
    unmount = subprocess.run(
        [sys.executable, "-m", "icloudfs", "unmount", str(mountpoint)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert unmount.returncode == 0, unmount.stderr
    daemon.wait(timeout=120)
    folder = checker.drive.root.get_children(force=True)
    crash = next(node for node in folder if node.name == "crash")
    remote = {node.name: node.open().content for node in crash.get_children(force=True)}
    assert not [n for n in remote if ".icloudfs-" in n], "no temporary copies left behind"
    lost = [name for name, data in closed.items() if data not in _versions_of(name, remote)]
    assert not lost, f"the last bytes written to {lost} are nowhere in iCloud"
    misplaced = sorted(name for name, data in closed.items() if remote.get(name) != data)
    assert not misplaced, f"the name does not hold the last bytes written to {misplaced}"
    extra = sorted(set(remote) - set(closed))
    assert not extra, f"files nobody wrote (conflict copies of our own uploads?): {extra}"


def _versions_of(name: str, remote: dict[str, bytes]) -> list[bytes]:
    """What iCloud holds for ``name``: the file itself and any conflict copies of it."""
    stem = name.rpartition(".")[0]
    return [data for other, data in remote.items() if other == name or other.startswith(f"{stem} (conflict ")]
