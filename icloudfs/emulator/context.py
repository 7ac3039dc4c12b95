"""The one object every route reaches through ``request.app.state.emulator``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from icloudfs.emulator.bridge_hub import BridgeHub
from icloudfs.emulator.config import EmulatorConfig
from icloudfs.emulator.faults import Faults
from icloudfs.emulator.sessions import Sessions
from icloudfs.emulator.srp import SrpServer
from icloudfs.emulator.store import Store


@dataclass
class Stats:
    """Request counts per endpoint (content URLs folded to ``/content`` and ``/upload``)."""

    requests: dict[str, int] = field(default_factory=dict)
    bytes_down: int = 0
    bytes_up: int = 0

    def count(self, path: str) -> None:
        self.requests[path] = self.requests.get(path, 0) + 1

    def as_json(self) -> dict[str, object]:
        return {
            "requests": dict(self.requests),
            "total": sum(self.requests.values()),
            "bytes_down": self.bytes_down,
            "bytes_up": self.bytes_up,
        }


@dataclass
class Emulator:
    """Config plus all live state of one emulator."""

    config: EmulatorConfig
    store: Store
    faults: Faults
    sessions: Sessions
    srp: SrpServer
    stats: Stats
    secret: bytes
    dsid: str
    bridge: BridgeHub

    @classmethod
    def open(cls, config: EmulatorConfig) -> Emulator:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(config.data_dir)
        stored = store.get_value("secret")
        if not stored:
            stored = secrets.token_hex(32)
            store.set_value("secret", stored)
        secret = bytes.fromhex(stored)
        dsid = str(int(hashlib.sha256(config.apple_id.lower().encode()).hexdigest(), 16) % 10**11)
        return cls(
            config=config,
            store=store,
            faults=Faults(config.latency_ms, config.bandwidth_mbps),
            sessions=Sessions(store, config, secret),
            srp=SrpServer(),
            stats=Stats(),
            secret=secret,
            dsid=dsid,
            bridge=BridgeHub(config.code),
        )

    # Signed URLs stand in for Apple's CDN links: no cookie, but an expiry (``e=``, seconds since
    # the epoch, as Apple's carry one), an HMAC, and the web session they were given to (``w=``):
    # once that session is gone, the content host refuses them (421).

    def sign(self, path: str, tail: str = "", session: str = "") -> str:
        """``path`` + ``tail`` with an expiry and an HMAC over ``path`` (``tail`` is cosmetic)."""
        expiry = int(time.time() + self.config.url_ttl)
        mac = self._mac(path, expiry, session)
        return f"{path}{tail}?e={expiry}" + (f"&w={session}" if session else "") + f"&s={mac}"

    def signature_ok(self, path: str, expiry: str, signature: str, session: str = "") -> bool:
        """The HMAC holds (whatever the expiry: ``expired`` tells that apart)."""
        if not expiry.isdigit():
            return False
        return hmac.compare_digest(self._mac(path, int(expiry), session), signature)

    @staticmethod
    def expired(expiry: str) -> bool:
        return not expiry.isdigit() or int(expiry) < time.time()

    def _mac(self, path: str, expiry: int, session: str) -> str:
        return hmac.new(self.secret, f"{path}|{expiry}|{session}".encode(), hashlib.sha256).hexdigest()[:32]


def emulator_of(request: HTTPConnection) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def origin_of(request: HTTPConnection) -> str:
    """The origin the client used, so advertised URLs work for 127.0.0.1, localhost or a LAN name."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"https://{host}"
