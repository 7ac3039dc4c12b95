"""A TCP proxy that models one link: added latency per request and a bandwidth cap shared by all bytes.

It models the link the way the emulator's ``--latency-ms`` / ``--bandwidth-mbps`` do, so rclone over
this proxy and icloudfs against the emulator see the same link: every chunk travelling client -> server
arrives ``latency`` later (a request pays it once), and ONE token bucket is shared by every connection
and both directions.

    python bench/linkproxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:PORT --latency-ms 20 --mbps 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

_CHUNK = 1 << 16
_BURST_SECONDS = 0.02


class Bucket:
    """The emulator's token bucket: FIFO, shared, ``rate`` bytes per second (0 = unlimited)."""

    def __init__(self, mbps: float) -> None:
        self.rate = mbps * 1_000_000 / 8
        self._level = 0.0
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, nbytes: int) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            burst = max(16384.0, self.rate * _BURST_SECONDS)
            self._level = min(burst, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
            self._level -= nbytes
            if self._level < 0:
                await asyncio.sleep(-self._level / self.rate)


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bucket: Bucket, delay: float
) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await bucket.take(len(data))
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(_CHUNK):
            if delay:
                queue.put_nowait((time.monotonic() + delay, data))
            else:
                await bucket.take(len(data))
                writer.write(data)
                await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        queue.put_nowait((0.0, b""))
        with contextlib.suppress(Exception):
            await sender
        with contextlib.suppress(Exception):
            writer.close()


async def serve(listen: tuple[str, int], target: tuple[str, int], latency: float, mbps: float) -> None:
    bucket = Bucket(mbps)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _pipe(client_r, server_w, bucket, latency),  # requests pay the latency
            _pipe(server_r, client_w, bucket, 0.0),
        )

    server = await asyncio.start_server(handle, *listen)
    async with server:
        await server.serve_forever()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_address, required=True)
    parser.add_argument("--target", type=_address, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--mbps", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.target, args.latency_ms / 1000, args.mbps))


if __name__ == "__main__":
    main()
