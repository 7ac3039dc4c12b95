"""Everything that shapes one emulator run, in one immutable value.

The command line, ``create_app`` and the tests all build an ``EmulatorConfig``;
nothing else reads flags or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TwoFactorRoute = Literal["bridge", "legacy"]

DEFAULT_APPLE_ID = "demo@icloudfs.test"
DEFAULT_PASSWORD = "correct-horse-battery"
# Registered on the account but, as on Apple's web sign-in, refused like a wrong password.
DEFAULT_APP_PASSWORD = "abcd-efgh-ijkl-mnop"
DEFAULT_CODE = "123456"


@dataclass(frozen=True)
class EmulatorConfig:
    """Settings of one emulator; ``data_dir`` holds everything that must survive restarts."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    apple_id: str = DEFAULT_APPLE_ID
    password: str = DEFAULT_PASSWORD
    app_password: str = DEFAULT_APP_PASSWORD
    code: str = DEFAULT_CODE
    two_factor: bool = True
    # "bridge": Apple's HSA2 trusted-device bridge (HTML boot args, push websocket, SPAKE2), what
    # pyicloud takes on real Apple; "legacy": JSON auth options offering SMS and the plain
    # securitycode endpoints only.
    two_factor_route: TwoFactorRoute = "bridge"
    seeds: tuple[str, ...] = ()
    latency_ms: float = 0.0
    bandwidth_mbps: float = 0.0  # 0: unlimited
    session_ttl: float = 86400.0
    trust_days: float = 30.0
    adp: bool = False
    lock_after: int = 5  # consecutive bad passwords before the account locks
    url_ttl: float = 300.0  # lifetime of signed content URLs
    download_redirects: float = 0.0  # share of downloads answered 330 to another host name
    accepted_code_conflicts: float = 0.0  # share of right trusted-device codes answered 409 "valid"
    pcs_ttl: float = 3600.0  # lifetime of ADP's PCS cookies
    quota_bytes: int = 5 * 1024**3
