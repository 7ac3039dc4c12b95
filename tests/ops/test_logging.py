"""Logging options on every command; a failed sign-in is a warning with its context."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from icloudfs.cli import build_parser
from icloudfs.icloud.passwords import PasswordStore
from icloudfs.ops.logging import JsonFormatter
from tests.ops.conftest import Run
from tests.support.emulator import Emulator


def test_every_command_takes_the_logging_options() -> None:
    for words in (["status"], ["token", "list"], ["unmount", "/m"], ["emulator", "--data", "d"], ["doctor"]):
        args = build_parser().parse_args([*words, "-q", "--log-format", "json", "--log-file", "x.log"])
        assert args.quiet and args.log_format == "json" and args.log_file == Path("x.log")


def test_json_lines_carry_the_context() -> None:
    record = logging.makeLogRecord(
        {"name": "icloudfs.x", "levelno": 30, "levelname": "WARNING", "msg": "upload of %s failed",
         "args": ("a.txt",), "endpoint": "https://emu"}
    )  # fmt: skip
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["message"] == "upload of a.txt failed"
    assert line["endpoint"] == "https://emu" and line["logger"] == "icloudfs.x"


@pytest.mark.usefixtures("signed_in")
def test_a_refused_sign_in_is_logged_as_a_warning_with_context(
    icloudfs: Run, emulator: Emulator, mountpoint: Path, tmp_path: Path
) -> None:
    assert icloudfs("logout").returncode == 0  # the session is gone; the keyring password is not
    PasswordStore().set(emulator.apple_id, "changed-on-another-device")
    log_file = tmp_path / "mount.jsonl"
    done = icloudfs(
        "mount", "--foreground", str(mountpoint), "--log-format", "json", "--log-file", str(log_file)
    )
    assert done.returncode == 1 and "did not accept" in done.stderr
    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    warning = next(e for e in entries if e["level"] == "warning" and "sign-in failed" in e["message"])
    assert warning["apple_id"] == emulator.apple_id and warning["endpoint"] == emulator.url
    emulator.unlock()
