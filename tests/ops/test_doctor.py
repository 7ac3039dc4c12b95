"""``icloudfs doctor`` on a machine that has everything, and on ones with a piece missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from icloudfs.config import Settings
from icloudfs.ops import doctor
from icloudfs.ops.doctor import Host, Level
from tests.ops.conftest import Run


def lines(output: str) -> dict[str, str]:
    """``{check name: its line}`` from the rendered checklist (colour off: not a terminal)."""
    found = {}
    for line in output.splitlines():
        if line[:1] in "✔!✘-":
            found[line[2:].split("  ")[0].strip()] = line
    return found


@pytest.mark.usefixtures("signed_in")
def test_all_green_when_signed_in_against_the_emulator(icloudfs: Run) -> None:
    done = icloudfs("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = lines(done.stdout)
    for name in (
        "FUSE device",
        "fusermount3",
        "endpoint",
        "clock",
        "sign-in",
        "trusted session",
        "cache space",
    ):
        assert checks[name].startswith("✔"), checks[name]
    assert checks["keyring"].startswith("!") and "plain file" in checks["keyring"]  # warned, not red
    assert "days left" in checks["trusted session"]


def test_missing_fusermount3_and_unreachable_endpoint_are_red_with_fixes(
    icloudfs: Run, tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    done = icloudfs("doctor", "--endpoint", "https://127.0.0.1:9", PATH=str(empty))
    assert done.returncode == 1
    checks = lines(done.stdout)
    assert checks["fusermount3"].startswith("✘") and "apt install fuse3" in done.stdout
    assert checks["endpoint"].startswith("✘") and "Connection refused" in checks["endpoint"]
    assert checks["sign-in"].startswith("-")  # not blamed on the account


def test_missing_fuse_device_and_user_allow_other(tmp_path: Path) -> None:
    conf = tmp_path / "fuse.conf"
    conf.write_text("#user_allow_other\nmount_max = 1000\n")
    host = Host(fuse_device=tmp_path / "no-fuse", fuse_conf=conf, uid=1000)
    settings = Settings(endpoint="https://127.0.0.1:9", allow_other=True, cache_dir=str(tmp_path))
    checks = {c.name: c for c in doctor.run(settings, host)}
    assert checks["FUSE device"].level is Level.FAIL and "modprobe fuse" in checks["FUSE device"].fix
    assert checks["allow_other"].level is Level.FAIL and "user_allow_other" in checks["allow_other"].fix
    conf.write_text("user_allow_other\n")
    again = {c.name: c for c in doctor.run(settings, host)}
    assert again["allow_other"].level is Level.OK
    rendered = doctor.render(list(checks.values()), color=True)
    assert "\x1b[31m✘\x1b[0m FUSE device" in rendered and "fix: load the module" in rendered
