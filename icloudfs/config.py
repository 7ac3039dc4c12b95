"""One settings object: defaults, then the TOML file, then ``ICLOUDFS_*`` variables, then flags.

Paths follow XDG through ``platformdirs``, so ``XDG_CONFIG_HOME`` and friends
isolate everything (the tests rely on it). The password never lives here: it is
in the keyring.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

APP = "icloudfs"
APPLE_ENDPOINT = "https://idmsa.apple.com"


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP))


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP))


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP))


def config_file() -> Path:
    return Path(os.environ.get("ICLOUDFS_CONFIG", config_dir() / "config.toml"))


def session_dir() -> Path:
    """pyicloud's cookie and session files: private, and kept across reboots (not /tmp)."""
    path = state_dir() / "session"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


@dataclass
class Settings:
    """Everything configurable. Field names match TOML keys and ``ICLOUDFS_<NAME>`` variables."""

    apple_id: str = ""
    endpoint: str = ""  # empty: Apple. Otherwise the base URL of an emulator.
    ca_file: str = ""  # a CA bundle to trust for ``endpoint``
    folder: str = "/"
    cache_dir: str = field(default_factory=lambda: str(cache_dir()))
    cache_size: str = "10G"
    metadata_ttl: str = "60s"
    negative_ttl: str = "5s"
    write_back: str = "2s"
    poll_interval: str = "60s"
    offline_timeout: str = "30s"
    drain_timeout: str = "60s"  # on unmount/SIGTERM: how long to wait for pending uploads
    allow_other: bool = False
    control_addr: str = "127.0.0.1:8731"  # "" turns TCP off (the mount's unix socket stays)
    control_socket: str = ""  # empty: one per mount in the runtime dir
    allow_remote: bool = False
    insecure_http: bool = False  # remote access over plain HTTP instead of HTTPS
    control_cert: str = ""  # with control_key: the HTTPS certificate (default: one icloudfs makes)
    control_key: str = ""
    control_docs: bool = False  # serve /docs (the OpenAPI page)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Defaults < config file < environment < explicit overrides (``None`` is ignored)."""
        settings = cls()
        path = config_file()
        if path.exists():
            with path.open("rb") as fh:
                settings._apply(tomllib.load(fh), source=str(path))
        env = {
            f.name: os.environ[f"ICLOUDFS_{f.name.upper()}"]
            for f in fields(cls)
            if f"ICLOUDFS_{f.name.upper()}" in os.environ
        }
        settings._apply(env, source="environment")
        settings._apply({k: v for k, v in overrides.items() if v is not None}, source="flags")
        return settings

    def _apply(self, values: dict[str, Any], *, source: str) -> None:
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"{source}: unknown setting {key!r}")
            if known[key].type in ("bool", bool) and isinstance(value, str):
                value = value.strip().lower() in ("1", "true", "yes", "on")
            setattr(self, key, value)

    def save(self, **changes: Any) -> None:
        """Persist the given settings to the config file, keeping the rest of it."""
        path = config_file()
        current: dict[str, Any] = {}
        if path.exists():
            with path.open("rb") as fh:
                current = tomllib.load(fh)
        current.update(changes)
        self._apply(changes, source="save")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in sorted(current.items())))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``10G`` -> bytes (binary units; a trailing ``B``/``iB`` is allowed)."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1] if raw and raw[-1] in _UNITS else ""
    number = raw[: len(raw) - len(unit)]
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError:
        raise ValueError(f"not a size: {text!r} (try 512M or 10G)") from None


def parse_duration(text: str) -> float:
    """``60s``, ``5m``, ``250ms``, ``2`` -> seconds."""
    raw = text.strip().lower()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if raw.endswith(suffix):
            raw, factor = raw[: -len(suffix)], scale
            break
    else:
        factor = 1.0
    try:
        return float(raw) * factor
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (try 60s or 250ms)") from None
