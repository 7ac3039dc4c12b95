"""``icloudfs doctor``: a checklist of everything a mount needs, each red line with its fix.

Checks run in order and never raise: FUSE (``/dev/fuse``, ``fusermount3``,
``user_allow_other`` when ``allow_other`` is wanted), the keyring, the
endpoint (reachability, and clock skew from its ``Date`` header), the sign-in
(through the running mount's control plane when one answers, else by resuming
the saved session) with the days left on the trusted session, and free space
for the cache. What the machine is (device path, fuse.conf, ``PATH``, uid) is a
``Host`` so tests can describe a machine with a piece missing.
"""

from __future__ import annotations

import enum
import os
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests

from icloudfs import config
from icloudfs.config import Settings
from icloudfs.control.client import ControlClient, ControlError, ControlUnreachable
from icloudfs.errors import IcloudfsError
from icloudfs.icloud.account import Account
from icloudfs.icloud.passwords import keyring_info

SKEW_WARN_S = 30.0
SKEW_FAIL_S = 300.0
TRUST_WARN_DAYS = 7
MIN_FREE = 1 << 30
TIMEOUT_S = 10.0


class Level(enum.Enum):
    OK = ("✔", "32")
    WARN = ("!", "33")
    FAIL = ("✘", "31")
    SKIP = ("-", "2")


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Host:
    """The machine as the checks see it."""

    fuse_device: Path = Path("/dev/fuse")
    fuse_conf: Path = Path("/etc/fuse.conf")
    path: str = field(default_factory=lambda: os.environ.get("PATH", os.defpath))
    uid: int = field(default_factory=os.getuid)


def run(settings: Settings, host: Host | None = None) -> list[Check]:
    """Every check, in the order they are shown."""
    return list(_checks(settings, host or Host()))


def render(checks: list[Check], *, color: bool) -> str:
    width = max(len(c.name) for c in checks)

    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color else text

    lines = []
    for check in checks:
        mark, code = check.level.value
        lines.append(f"{paint(mark, code)} {check.name:<{width}}  {check.detail}")
        if check.fix and check.level in (Level.FAIL, Level.WARN):
            lines.append(f"  {'':<{width}}  fix: {check.fix}")
    return "\n".join(lines)


def _checks(settings: Settings, host: Host) -> Iterator[Check]:
    yield _fuse_device(host)
    yield _fusermount(host)
    yield _allow_other(settings, host)
    yield _keyring()
    reached, skew = _endpoint(settings)
    yield reached
    yield skew
    if reached.level is Level.FAIL:
        yield Check("sign-in", Level.SKIP, "not checked: the endpoint cannot be reached")
    else:
        yield from _sign_in(settings)
    yield _cache_space(settings)


def _fuse_device(host: Host) -> Check:
    device = host.fuse_device
    try:
        mode = device.stat().st_mode
    except OSError:
        return Check(
            "FUSE device",
            Level.FAIL,
            f"{device} is missing",
            "load the module (`modprobe fuse`); in a container, pass --device /dev/fuse",
        )
    if not stat.S_ISCHR(mode) or not os.access(device, os.R_OK | os.W_OK):
        return Check(
            "FUSE device",
            Level.FAIL,
            f"{device} is not a usable device",
            f"check `ls -l {device}` (crw-rw-rw-)",
        )
    return Check("FUSE device", Level.OK, f"{device} is usable")


def _fusermount(host: Host) -> Check:
    found = shutil.which("fusermount3", path=host.path)
    if found is None:
        return Check("fusermount3", Level.FAIL, "not found in PATH", "install fuse3 (`apt install fuse3`)")
    if host.uid != 0 and not os.stat(found).st_mode & stat.S_ISUID:
        return Check(
            "fusermount3", Level.FAIL, f"{found} is not setuid root", f"`chmod u+s {found}` (as root)"
        )
    return Check("fusermount3", Level.OK, found)


def _allow_other(settings: Settings, host: Host) -> Check:
    if not settings.allow_other:
        return Check("allow_other", Level.SKIP, "not configured")
    if host.uid == 0:
        return Check("allow_other", Level.OK, "running as root: no fuse.conf entry needed")
    try:
        lines = host.fuse_conf.read_text().splitlines()
    except OSError:
        lines = []
    if "user_allow_other" in (line.strip() for line in lines):
        return Check("allow_other", Level.OK, f"user_allow_other is set in {host.fuse_conf}")
    return Check(
        "allow_other",
        Level.FAIL,
        f"allow_other is configured but {host.fuse_conf} lacks user_allow_other",
        f"add a line `user_allow_other` to {host.fuse_conf} (as root)",
    )


def _keyring() -> Check:
    info = keyring_info()
    if not info.usable or info.plaintext:
        return Check(
            "keyring",
            Level.WARN,
            info.backend + (" stores passwords in a plain file" if info.usable else ": none available"),
            "install a Secret Service (gnome-keyring, KeePassXC) or set PYTHON_KEYRING_BACKEND",
        )
    return Check("keyring", Level.OK, info.backend)


def _endpoint(settings: Settings) -> tuple[Check, Check]:
    url = settings.endpoint or config.APPLE_ENDPOINT
    began = time.time()
    try:
        response = requests.get(
            url, verify=settings.ca_file or True, timeout=TIMEOUT_S, allow_redirects=False
        )
    except requests.exceptions.SSLError as error:
        fix = "check --ca-file / ca_file" if settings.ca_file else "check the system's CA certificates"
        return Check("endpoint", Level.FAIL, f"TLS to {url} failed: {error}", fix), _no_clock()
    except requests.RequestException as error:
        reason = getattr(error.args[0], "reason", None) if error.args else None
        why = str(reason or error).rpartition("): ")[2]  # urllib3 wraps the cause twice
        fix = "check the network, or --endpoint"
        return Check("endpoint", Level.FAIL, f"{url} cannot be reached: {why}", fix), _no_clock()
    ended = time.time()
    reached = Check("endpoint", Level.OK, f"{url} answers ({(ended - began) * 1000:.0f} ms)")
    try:
        server = parsedate_to_datetime(response.headers["Date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return reached, Check("clock", Level.SKIP, "the endpoint sent no Date header")
    skew = (began + ended) / 2 - server  # Date has 1 s resolution: allow for that and the round trip
    size = max(0.0, abs(skew) - 1 - (ended - began) / 2)
    detail = f"{abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the endpoint"
    fix = "enable time sync (`timedatectl set-ntp true`)"
    if size > SKEW_FAIL_S:
        return reached, Check("clock", Level.FAIL, detail + ": sign-in tokens will be refused", fix)
    if size > SKEW_WARN_S:
        return reached, Check("clock", Level.WARN, detail, fix)
    return reached, Check("clock", Level.OK, f"in step with the endpoint (±{max(size, 1):.0f} s)")


def _no_clock() -> Check:
    return Check("clock", Level.SKIP, "not checked: no answer from the endpoint")


def _sign_in(settings: Settings) -> Iterator[Check]:
    login = "`icloudfs login`"
    if not settings.apple_id:
        yield Check("sign-in", Level.FAIL, "no Apple ID configured", login)
        return
    try:
        info = _account_info(settings)
    except (IcloudfsError, ControlError) as error:
        yield Check("sign-in", Level.FAIL, f"{settings.apple_id}: {error}", login)
        return
    state = str(info.get("auth_state"))
    if state != "signed_in":
        yield Check("sign-in", Level.FAIL, f"{settings.apple_id} is {state}", login)
        return
    yield Check("sign-in", Level.OK, f"{settings.apple_id} is signed in")
    days = info.get("trust_days_left")
    if not isinstance(days, int):
        yield Check("trusted session", Level.WARN, "trust date unknown", f"{login} once to record it")
    elif days <= 0:
        yield Check("trusted session", Level.FAIL, "expired: a two-factor code will be needed", login)
    elif days < TRUST_WARN_DAYS:
        yield Check("trusted session", Level.WARN, f"{days} days left", f"{login} before it runs out")
    else:
        yield Check("trusted session", Level.OK, f"{days} days left")


def _account_info(settings: Settings) -> dict[str, object]:
    """The running mount's view of the account when it answers, else a resumed session's."""
    try:
        with ControlClient.for_mount() as client:
            return dict(client.credentials().model_dump())
    except ControlUnreachable:
        pass
    account = Account(
        settings.apple_id,
        session_dir=config.session_dir(),
        endpoint=settings.endpoint or None,
        ca_file=settings.ca_file or None,
    )
    account.resume()
    return account.info()


def _cache_space(settings: Settings) -> Check:
    folder = Path(settings.cache_dir)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    bound = config.parse_size(settings.cache_size)
    detail = f"{_gib(free)} free for {folder} (cache bound {_gib(bound)})"
    if free < MIN_FREE:
        return Check("cache space", Level.FAIL, detail, "free some space, or set cache_dir elsewhere")
    if free < bound:
        return Check("cache space", Level.WARN, detail, f"lower cache_size below {_gib(free)}")
    return Check("cache space", Level.OK, detail)


def _gib(count: int) -> str:
    return f"{count / (1 << 30):.1f} GiB"
