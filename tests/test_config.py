"""Settings precedence and the size/duration parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from icloudfs.config import Settings, config_file, parse_duration, parse_size, session_dir


def test_file_then_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_file()
    path.parent.mkdir(parents=True)
    path.write_text('folder = "/FromFile"\ncache_size = "1G"\nallow_remote = true\n')
    monkeypatch.setenv("ICLOUDFS_FOLDER", "/FromEnv")
    settings = Settings.load(cache_size=None)
    assert (settings.folder, settings.cache_size, settings.allow_remote) == ("/FromEnv", "1G", True)
    assert Settings.load(folder="/FromFlag").folder == "/FromFlag"


def test_environment_booleans_and_unknown_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICLOUDFS_ALLOW_REMOTE", "no")
    assert Settings.load().allow_remote is False
    config_file().parent.mkdir(parents=True)
    config_file().write_text('colour = "blue"\n')
    with pytest.raises(ValueError, match="unknown setting 'colour'"):
        Settings.load()


def test_save_keeps_other_keys_and_never_writes_a_password() -> None:
    config_file().parent.mkdir(parents=True)
    config_file().write_text('folder = "/Keep"\n')
    Settings.load().save(apple_id="a@b.c", allow_remote=True)
    text = config_file().read_text()
    assert 'folder = "/Keep"' in text and 'apple_id = "a@b.c"' in text and "allow_remote = true" in text
    assert "password" not in text


def test_session_dir_is_private_and_under_xdg_state(tmp_path: Path) -> None:
    path = session_dir()
    assert path.is_relative_to(tmp_path / "home" / "state")
    assert path.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10G", 10 << 30), ("512M", 512 << 20), ("1.5K", 1536), ("100", 100), ("2GiB", 2 << 30)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("60s", 60.0), ("250ms", 0.25), ("5m", 300.0), ("2", 2.0)])
def test_parse_duration(text: str, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["ten", "G", "5x"])
def test_parse_errors_are_clear(bad: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_size(bad)
