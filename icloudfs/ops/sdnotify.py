"""systemd's readiness protocol without libsystemd: one datagram to ``$NOTIFY_SOCKET``.

A unit with ``Type=notify`` waits for ``READY=1``; icloudfs sends it only once
the mount answers, so units ordered after it (and ``systemctl start``) see a
live mount. The socket is a path, or an abstract name when it starts with
``@``. Without ``NOTIFY_SOCKET`` (not under systemd) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(*states: str) -> bool:
    """Send ``states`` (e.g. ``READY=1``, ``STATUS=...``); True when a socket took them."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(states).encode(), address)
    except OSError as error:
        log.warning("could not notify systemd at %s: %s", address.lstrip("\0"), error)
        return False
    return True
