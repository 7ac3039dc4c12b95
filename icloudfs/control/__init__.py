"""The control plane: a small authenticated HTTP API beside the mount.

service.py   the seam: protocols for the account and the filesystem
app.py       create_app(service) -> FastAPI;   routes/  the endpoints
auth.py      who is local, bearer tokens, failure rate limit
tokens.py    TokenStore: hashes in the keyring, cached in memory
errors.py    the error envelope and icloudfs.errors -> HTTP, in one place
server.py    ControlServer: uvicorn in a thread, TCP or unix socket
client.py    ControlClient for the CLI and scripts;  commands.py  CLI subcommands
"""

from __future__ import annotations

from icloudfs.control.app import create_app
from icloudfs.control.client import ControlClient, ControlError, ControlUnreachable
from icloudfs.control.server import ControlServer, ControlStartError
from icloudfs.control.service import Account, ControlService, Filesystem, NotAttached
from icloudfs.control.tokens import TokenStore, UnknownToken

__all__ = [
    "Account",
    "ControlClient",
    "ControlError",
    "ControlServer",
    "ControlService",
    "ControlStartError",
    "ControlUnreachable",
    "Filesystem",
    "NotAttached",
    "TokenStore",
    "UnknownToken",
    "create_app",
]
