"""A random-operation exerciser: thousands of writes, truncates, reopens and renames on a real
mount, every read compared against an in-memory model (fixed seeds, so a failure replays)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.fuse.conftest import LiveMount

NAMES = [f"file{i}.bin" for i in range(6)]


class Model:
    """What every file should hold."""

    def __init__(self) -> None:
        self.files: dict[str, bytearray] = {}

    def write(self, name: str, offset: int, data: bytes) -> None:
        content = self.files.setdefault(name, bytearray())
        if len(content) < offset:
            content.extend(bytes(offset - len(content)))
        content[offset : offset + len(data)] = data

    def truncate(self, name: str, length: int) -> None:
        content = self.files.setdefault(name, bytearray())
        del content[length:]
        content.extend(bytes(length - len(content)))


def exercise(root: Path, seed: int, steps: int) -> Model:
    rng, model = random.Random(seed), Model()
    handles: dict[str, int] = {}
    for step in range(steps):
        name = rng.choice(NAMES)
        path = root / name
        action = rng.random()
        if action < 0.45:
            offset, data = rng.randrange(0, 300_000), rng.randbytes(rng.choice([1, 100, 4096, 70_000]))
            fd = handles.get(name) or os.open(path, os.O_RDWR | os.O_CREAT)
            handles[name] = fd
            os.pwrite(fd, data, offset)
            model.write(name, offset, data)
        elif action < 0.55:
            length = rng.randrange(0, 200_000)
            os.truncate(path, length) if path.exists() else path.write_bytes(bytes(length))
            model.truncate(name, length)
        elif action < 0.75 and name in handles:
            os.close(handles.pop(name))  # a close: the upload may start while we go on
        elif action < 0.85 and name in model.files:
            other = rng.choice(NAMES)
            for open_name in (name, other):
                if open_name in handles:
                    os.close(handles.pop(open_name))
            os.rename(path, root / other)
            if other != name:
                model.files[other] = model.files.pop(name)
        elif name in model.files:
            assert path.read_bytes() == bytes(model.files[name]), f"step {step}: {name} differs"
    for fd in handles.values():
        os.close(fd)
    return model


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_match_the_model(
    any_mount: LiveMount, seed: int, request: pytest.FixtureRequest
) -> None:
    steps = 1500 if "memory" in request.node.name else 300
    model = exercise(any_mount.path, seed, steps)
    for name, content in model.files.items():
        assert (any_mount.path / name).read_bytes() == bytes(content), name
    any_mount.settle(120)
    assert sorted(any_mount.drive.names()) == sorted(model.files)
    for name, content in model.files.items():
        assert any_mount.drive.content(name) == bytes(content), f"{name} reached the drive wrong"
