"""Free TCP ports for servers the tests start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing on this machine holds, on any address.

    The probe binds the wildcard address, as a server with remote access does: a port free
    on 127.0.0.1 alone may still be the local end of another program's connection on an
    outside address, and then a later bind on 0.0.0.0 fails with EADDRINUSE."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])
