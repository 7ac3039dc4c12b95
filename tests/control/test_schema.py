"""Schema conformance: schemathesis drives every operation of the OpenAPI document and
checks each answer against it (statuses, bodies, content types, 405s).

This one runs in-process over ASGI. A shim presents the caller as the CLI (as if it came through
the mount's unix socket, with ``Host: localhost`` and the client header), since the ASGI test
client's peer is no socket; the auth and CSRF rules themselves are tested over real sockets
elsewhere.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from keyrings.alt.file import PlaintextKeyring
from schemathesis.config import SchemathesisConfig
from starlette.types import ASGIApp, Receive, Scope, Send

from icloudfs.config import Settings
from icloudfs.control import ControlService, TokenStore, create_app

from .fakes import FakeAccount, FakeFilesystem


def as_local(app: ASGIApp) -> ASGIApp:
    async def shim(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"]
            headers += [(b"host", b"localhost"), (b"x-icloudfs-client", b"schemathesis")]
            scope = {**scope, "client": None, "headers": headers}
        await app(scope, receive, send)

    return shim


def _app(keyring_dir: Path) -> Any:
    backend = PlaintextKeyring()
    backend.file_path = str(keyring_dir / "keyring_pass.cfg")
    service = ControlService(
        settings=Settings(control_addr="127.0.0.1:0"),
        tokens=TokenStore(backend),
        account=FakeAccount(),
        filesystem=FakeFilesystem(),
    )
    return as_local(create_app(service))


# Loaded at import (schemathesis needs the schema to parametrize), so the keyring file is
# placed in its own temporary folder here; the autouse ``home`` fixture isolates the rest
# (the config file that PUT /settings writes).
_KEYRING_DIR = tempfile.TemporaryDirectory(prefix="icfs-schema-")
# A wrong password or 2FA code is well-formed input that Apple refuses: 400 by design.
_CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-path-regex": "^/credentials/(login|2fa)$",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400"]}},
            }
        ]
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(Path(_KEYRING_DIR.name)), config=_CONFIG)


@schema.parametrize()
@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()
