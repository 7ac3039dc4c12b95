"""Installed without the Makefile, as ``pipx install .`` or ``pip install --user .`` do: the wheel
``python -m build`` makes carries complete metadata and the control page, and its console script
signs in and mounts from any folder, one holding an ``icloudfs/`` folder included."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from tests.ops.conftest import Remote
from tests.support.emulator import Emulator

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [built] = out.glob("icloudfs-*.whl")
    return built


def test_the_wheel_carries_metadata_and_the_control_page(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    for field in ("Summary", "License-Expression", "Requires-Python", "Author", "Keywords"):
        assert metadata[field], field
    assert "Topic :: System :: Filesystems" in metadata.get_all("Classifier")
    assert any(r.startswith("pyicloud") for r in metadata.get_all("Requires-Dist"))
    assert metadata.get_payload().startswith("# icloudfs"), "the README is the long description"
    assert {"icloudfs/control/web/index.html", "icloudfs/control/web/app.js", "icloudfs/py.typed"} <= set(
        names
    )
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any("console_scripts" in archive_entry for archive_entry in _entry_points(wheel))


def _entry_points(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
        return archive.read(name).decode().splitlines()


def test_the_installed_command_signs_in_and_mounts_from_anywhere(
    wheel: Path, emulator: Emulator, env: dict[str, str], remote: Remote, tmp_path: Path
) -> None:
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}  # nothing of the checkout leaks in
    venv = tmp_path / "venv"  # what pipx makes: a venv of its own, the script linked onto PATH
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, timeout=600, env=env)
    icloudfs = str(venv / "bin" / "icloudfs")
    here = tmp_path / "checkout"
    (here / "icloudfs").mkdir(parents=True)  # a folder of that name where the user stands

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [icloudfs, *args], input=stdin, capture_output=True, text=True, cwd=here, env=env, timeout=120
        )

    login = run("login", "--apple-id", emulator.apple_id, "--password-stdin", "--code", emulator.code,
                stdin=emulator.password + "\n")  # fmt: skip
    assert login.returncode == 0, login.stderr
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    mounted = run("mount", str(mountpoint))
    assert mounted.returncode == 0, mounted.stderr
    try:
        (mountpoint / "from-the-wheel.txt").write_text("installed without make\n")
        assert run("unmount", str(mountpoint)).returncode == 0
    finally:
        if os.path.ismount(mountpoint):
            subprocess.run(["fusermount3", "-uz", str(mountpoint)], check=False)
    assert remote.files()["from-the-wheel.txt"] == b"installed without make\n"
