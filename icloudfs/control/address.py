"""Where the control plane listens on TCP, as the settings say (``/settings`` shows it).

``control_addr`` (``HOST:PORT``) gives the port and the host; ``allow_remote`` adds every
interface (``0.0.0.0``) on the same port (``server.py``). The unix socket of each mount is
``runtime.py``'s, unless ``control_socket`` names one.
"""

from __future__ import annotations

from dataclasses import dataclass

from icloudfs.config import Settings

ALL_INTERFACES = "0.0.0.0"


def split_addr(addr: str) -> tuple[str, int]:
    """``127.0.0.1:8731`` -> ``("127.0.0.1", 8731)``; ``[::1]:8731`` -> ``("::1", 8731)``."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"control_addr must be HOST:PORT, not {addr!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True)
class Binding:
    host: str
    port: int
    socket: str | None

    @classmethod
    def of(cls, settings: Settings) -> Binding:
        host, port = split_addr(settings.control_addr)
        if settings.allow_remote:
            host = ALL_INTERFACES
        return cls(host=host, port=port, socket=settings.control_socket or None)
