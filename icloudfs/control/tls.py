"""TLS for remote access to the control plane: a certificate icloudfs makes, or the user's own.

Remote callers send bearer tokens, and the page sends the Apple ID password: over plain HTTP
anyone on the network path reads them. So with ``allow_remote`` the TCP listener serves HTTPS
(plain HTTP only with ``insecure_http``). Without ``control_cert``/``control_key`` icloudfs makes
a self-signed certificate (EC P-256, two years, for localhost, this host's name and loopback)
in the state dir, key 0600, and reuses it. No CA vouches for it: clients pin it by its
SHA-256 fingerprint, which ``icloudfs token create`` prints beside the token, and which
``ControlClient(fingerprint=...)`` checks before sending anything (``pinned_context``).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from icloudfs import config

VALID_DAYS = 730
RENEW_DAYS = 30  # a certificate this close to its end is made again


class PinMismatch(ssl.SSLError):
    """The server's certificate is not the pinned one."""


@dataclass(frozen=True)
class ServerCert:
    cert: Path
    key: Path

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert.read_bytes())


def server_cert(cert: str = "", key: str = "") -> ServerCert:
    """The user's certificate when given, else icloudfs's own (made when missing or old)."""
    if cert or key:
        if not (cert and key):
            raise ValueError("control_cert and control_key go together")
        return ServerCert(Path(cert), Path(key))
    folder = config.state_dir() / "control"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    own = ServerCert(folder / "cert.pem", folder / "key.pem")
    if not own.cert.exists() or not own.key.exists() or _ending(own.cert):
        _make(own)
    return own


def fingerprint(pem: bytes) -> str:
    """``AB:CD:...``: the SHA-256 of the certificate's DER form, as browsers show it."""
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def pinned_context(host: str, port: int, pin: str) -> ssl.SSLContext:
    """An SSL context that trusts exactly the certificate whose fingerprint is ``pin``: the
    server's certificate is fetched and compared first, then it is the only one trusted (host
    names are not checked: the pin is the identity). Raises ``PinMismatch``."""
    pem = ssl.get_server_certificate((host, port), timeout=10).encode()
    found = fingerprint(pem)
    if found.replace(":", "").upper() != pin.replace(":", "").upper():
        raise PinMismatch(f"{host}:{port} presented certificate {found}, not the pinned {pin}")
    context = ssl.create_default_context(cadata=pem.decode())
    context.check_hostname = False
    return context


def _ending(cert: Path) -> bool:
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    left = loaded.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left < datetime.timedelta(days=RENEW_DAYS)


def _make(target: ServerCert) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"icloudfs control plane on {host}")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(host)]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)  # its own anchor
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(target.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    target.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
