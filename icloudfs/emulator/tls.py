"""TLS material: a CA kept in the data dir (so clients trust it across restarts) and a server cert.

The CA key stays next to ``ca.pem`` so a restarted emulator signs with the same
CA; the leaf certificate is issued fresh on every start for the hosts we serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    """Paths handed to uvicorn (cert, key) and to clients (ca)."""

    ca: Path
    cert: Path
    key: Path


def ensure_tls(data_dir: Path, host: str) -> TlsFiles:
    """Load or create the CA under ``data_dir`` and issue a server certificate for ``host``."""
    ca_pem, ca_key = data_dir / "ca.pem", data_dir / "ca.key"
    if ca_pem.exists() and ca_key.exists():
        ca = trustme.CA.from_pem(ca_pem.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="icloudfs emulator")
        ca_key.write_bytes(ca.private_key_pem.bytes())
        ca_key.chmod(0o600)
        ca.cert_pem.write_to_path(str(ca_pem))
    names = {"127.0.0.1", "localhost", "::1"}
    if host not in ("0.0.0.0", "::", ""):
        names.add(host)
    leaf = ca.issue_cert(*sorted(names))
    cert, key = data_dir / "server.pem", data_dir / "server.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    key.chmod(0o600)
    return TlsFiles(ca=ca_pem, cert=cert, key=key)
