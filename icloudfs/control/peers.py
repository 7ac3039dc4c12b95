"""Which user is at the other end of a local connection, as the kernel says (never a header).

- A unix socket: ``SO_PEERCRED`` gives the peer process's uid.
- Loopback TCP: ``/proc/net/tcp`` and ``tcp6`` list every socket with its owner's uid, as
  ``ss -p`` reads them. The peer of a connection is the socket whose local address is the
  connection's client address and whose remote address is ours; a listener is a socket in
  state LISTEN on the port.

The control plane uses the first two to know that a caller on this machine is this user
(another user of the machine is as remote as anyone); the CLI uses the third to know that
what listens on a port is this user's, before it sends a password there.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_LISTEN = "0A"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def socket_peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a unix socket (None if the kernel won't say)."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def tcp_peer_uid(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The uid owning the client end of the TCP connection ``client`` -> ``server`` on this
    machine; None when no such socket is here (the client is on another machine)."""
    try:
        want_local, want_remote = (_address(client[0]), client[1]), (_address(server[0]), server[1])
    except ValueError:  # not an address (an in-process test client)
        return None
    for local, remote, _state, uid in _sockets():
        if local == want_local and remote == want_remote:
            return uid
    return None


def listener_uids(port: int) -> set[int]:
    """The uids of every socket listening on this TCP port, any address."""
    return {uid for local, _remote, state, uid in _sockets() if state == _LISTEN and local[1] == port}


def _sockets() -> Iterator[tuple[tuple[Address, int], tuple[Address, int], str, int]]:
    for table in _TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7:
                yield _endpoint(fields[1]), _endpoint(fields[2]), fields[3], int(fields[7])


def _endpoint(text: str) -> tuple[Address, int]:
    """``0100007F:2233`` -> (127.0.0.1, 8755): each 32-bit word is printed in host order."""
    hexaddr, _, hexport = text.partition(":")
    raw = b"".join(struct.pack("=I", int(hexaddr[i : i + 8], 16)) for i in range(0, len(hexaddr), 8))
    return _unmapped(ipaddress.ip_address(raw)), int(hexport, 16)


def _address(text: str) -> Address:
    return _unmapped(ipaddress.ip_address(text.strip("[]")))


def _unmapped(address: Address) -> Address:
    """``::ffff:127.0.0.1`` -> ``127.0.0.1``, so both tables compare alike."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
