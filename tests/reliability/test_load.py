"""A bounded burst at the control plane: 2,000 authenticated and 2,000 bad-token requests from
a local load generator, while /health keeps answering and mount I/O keeps working."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import httpx

from icloudfs.config import Settings
from icloudfs.control.server import ControlServer
from icloudfs.control.service import ControlService
from icloudfs.control.tokens import TokenStore
from icloudfs.drive.memory import MemoryDrive
from tests.fuse.conftest import MountFactory

BURST = 2000
NOT_LOCAL = {"X-Forwarded-For": "203.0.113.9"}  # makes a loopback caller count as remote


async def _burst(url: str, headers: dict[str, str], count: int, statuses: Counter[int], source: str) -> None:
    """``count`` GET /status from the loopback address ``source`` (the limiter keys on the peer)."""
    transport = httpx.AsyncHTTPTransport(local_address=source, limits=httpx.Limits(max_connections=32))
    async with httpx.AsyncClient(base_url=url, headers=headers, transport=transport, timeout=30) as client:
        semaphore = asyncio.Semaphore(32)

        async def one() -> None:
            async with semaphore:
                statuses[(await client.get("/status")).status_code] += 1

        await asyncio.gather(*(one() for _ in range(count)))


def test_burst_keeps_health_and_mount_io_working(mount_factory: MountFactory) -> None:
    live = mount_factory(MemoryDrive())
    tokens = TokenStore()
    token = tokens.create_token("load test").token
    server = ControlServer(ControlService(Settings(control_addr="127.0.0.1:0"), tokens, filesystem=live.fs))
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}"
        good: Counter[int] = Counter()
        bad: Counter[int] = Counter()

        async def everything() -> list[float]:
            load = asyncio.gather(
                _burst(url, {**NOT_LOCAL, "Authorization": f"Bearer {token}"}, BURST, good, "127.0.0.1"),
                _burst(url, {**NOT_LOCAL, "Authorization": "Bearer " + "x" * 43}, BURST, bad, "127.0.0.2"),
            )
            health: list[float] = []
            async with httpx.AsyncClient(base_url=url, timeout=10) as probe:
                while not load.done():
                    started = time.monotonic()
                    assert (await probe.get("/health")).status_code == 200
                    health.append(time.monotonic() - started)
                    data = os.urandom(100_000)
                    await asyncio.to_thread((live.path / "io.bin").write_bytes, data)
                    assert await asyncio.to_thread((live.path / "io.bin").read_bytes) == data
                    await asyncio.sleep(0.05)
            await load
            return health

        health = asyncio.run(everything())
        assert good[200] == BURST, good
        assert set(bad) <= {401, 429} and sum(bad.values()) == BURST and bad[429] > 0, bad
        assert health and max(health) < 5.0, (
            f"/health answered within 5 s during the burst: {max(health):.2f}"
        )
    finally:
        server.stop()
