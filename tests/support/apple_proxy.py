"""An HTTPS proxy that sends Apple's host names to the emulator, for clients whose hosts are fixed.

rclone's iclouddrive backend has its endpoints compiled in (``setup.icloud.com``,
``idmsa.apple.com``; ``backend/iclouddrive/api/client.go``) and no option to move them,
but it honours ``HTTPS_PROXY`` and ``--ca-cert``. This proxy accepts ``CONNECT`` for
Apple's hosts only (anything else is refused, so a test never reaches the internet),
answers the client's TLS with a certificate for that host from its own CA, and relays
the decrypted bytes over a second TLS connection to the emulator, which checks the
emulator's own certificate. The client's ``Host`` header passes unchanged, so the
emulator's answers advertise Apple host names (``https://setup.icloud.com/drivews``)
and every later call comes back through here. The emulator serves every Apple host
by path on its one origin, so no path is rewritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import trustme

APPLE_DOMAINS = ("icloud.com", "apple.com", "icloud-content.com")
_CHUNK = 1 << 16


def is_apple(host: str) -> bool:
    """Whether ``host`` is one of Apple's (and so may be sent to the emulator)."""
    return any(host == domain or host.endswith("." + domain) for domain in APPLE_DOMAINS)


@dataclass(frozen=True)
class ProxyInfo:
    """What a client needs: the proxy URL (``HTTPS_PROXY``) and the CA to trust (``--ca-cert``)."""

    url: str
    ca: Path


class _Relay:
    """The proxy's connection handling; runs on its own event loop thread."""

    def __init__(self, upstream: tuple[str, int], upstream_ca: Path, ca: trustme.CA) -> None:
        self.upstream = upstream
        self.to_emulator = ssl.create_default_context(cafile=str(upstream_ca))
        leaf = ca.issue_cert(*APPLE_DOMAINS, *(f"*.{domain}" for domain in APPLE_DOMAINS))
        self.as_apple = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(self.as_apple)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            host = target.rpartition(":")[0]
            if method != "CONNECT" or not is_apple(host):
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await writer.start_tls(self.as_apple)
            up_reader, up_writer = await asyncio.open_connection(
                *self.upstream, ssl=self.to_emulator, server_hostname=self.upstream[0]
            )
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client or the emulator went away (or spoke nonsense): drop this connection only
        finally:
            writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until ``source`` ends, then end ``sink``'s side too (the other pipe may go on)."""
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if sink.can_write_eof():
                sink.write_eof()
            else:
                sink.close()


@contextlib.contextmanager
def apple_proxy(emulator_url: str, emulator_ca: str, workdir: Path) -> Iterator[ProxyInfo]:
    """Run the proxy on a free port of 127.0.0.1 until the block ends.

    ``emulator_url`` is the emulator's ``https://HOST:PORT``; the proxy's CA is written to
    ``workdir/proxy-ca.pem`` for the client to trust."""
    host, _, port = emulator_url.removeprefix("https://").rpartition(":")
    ca = trustme.CA(organization_name="icloudfs test proxy")
    workdir.mkdir(parents=True, exist_ok=True)
    ca_path = workdir / "proxy-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    relay = _Relay((host.strip("[]"), int(port)), Path(emulator_ca), ca)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="apple-proxy", daemon=True)
    thread.start()
    started: Future[asyncio.Server] = asyncio.run_coroutine_threadsafe(
        asyncio.start_server(relay.handle, "127.0.0.1", 0), loop
    )
    server = started.result(timeout=10)
    listen_port = server.sockets[0].getsockname()[1]
    try:
        yield ProxyInfo(url=f"http://127.0.0.1:{listen_port}", ca=ca_path)
    finally:
        asyncio.run_coroutine_threadsafe(_shut(server), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _shut(server: asyncio.Server) -> None:
    """Stop listening and end every relayed connection still open."""
    server.close()
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
