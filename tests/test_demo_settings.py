"""How ``icloudfs demo`` builds its settings: the user's, with only the emulator's parts replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from icloudfs import config
from icloudfs.demo import demo_settings

EMULATOR = {"apple_id": "demo@icloudfs.test", "url": "https://127.0.0.1:4443", "ca": "/tmp/ca.pem"}


def test_the_control_plane_and_tuning_come_from_the_config_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.config_file().parent.mkdir(parents=True)
    config.config_file().write_text(
        'control_socket = "/run/user/1000/icloudfs/control.sock"\n'
        'metadata_ttl = "5m"\n'
        'apple_id = "me@example.com"\n'
        'folder = "/LegalCases"\n'
        'cache_dir = "/var/cache/me"\n'
    )
    monkeypatch.setenv("ICLOUDFS_CONTROL_ADDR", "127.0.0.1:9911")
    monkeypatch.setenv("ICLOUDFS_ENDPOINT", "https://elsewhere.example")

    settings = demo_settings(EMULATOR, tmp_path / "demo")

    assert settings.control_addr == "127.0.0.1:9911"
    assert settings.control_socket == "/run/user/1000/icloudfs/control.sock"
    assert settings.metadata_ttl == "5m"
    # what must be the emulator's, and the demo's own, whatever the user configured
    assert (settings.apple_id, settings.endpoint, settings.ca_file) == (
        "demo@icloudfs.test",
        "https://127.0.0.1:4443",
        "/tmp/ca.pem",
    )
    assert settings.folder == "/"
    assert settings.cache_dir == str(tmp_path / "demo" / "cache")


def test_without_any_configuration_the_defaults_apply(tmp_path: Path) -> None:
    settings = demo_settings(EMULATOR, tmp_path)
    assert settings.control_addr == "127.0.0.1:8731" and settings.control_socket == ""
