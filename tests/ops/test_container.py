"""The container recipe's entrypoint, run as the image runs it but outside a container (no
container runtime here): it waits for a sign-in, then mounts in the foreground, and
``docker stop``'s SIGTERM stores the uploads and unmounts. The Containerfile and compose file
name what exists."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.ops.conftest import Remote, wait_for
from tests.support.emulator import Emulator

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "contrib" / "container"


def test_the_recipe_names_what_exists() -> None:
    containerfile = (RECIPE / "Containerfile").read_text()
    for source in re.findall(r"^COPY (\S+) ", containerfile, flags=re.M):
        assert (REPO / source).exists(), source
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"\]', containerfile, flags=re.M)
    assert entry is not None and f"COPY contrib/container/entrypoint.sh {entry.group(1)}" in containerfile
    compose = (RECIPE / "compose.yaml").read_text()
    assert "dockerfile: contrib/container/Containerfile" in compose and "propagation: rshared" in compose
    assert os.access(RECIPE / "entrypoint.sh", os.X_OK)


def test_the_entrypoint_waits_for_a_sign_in_then_mounts(
    emulator: Emulator, env: dict[str, str], remote: Remote, tmp_path: Path
) -> None:
    mountpoint = tmp_path / "icloud"
    bin_dir = str(Path(sys.executable).parent)  # where the image has `icloudfs`
    entry_env = {**env, "ICLOUDFS_MOUNTPOINT": str(mountpoint), "PATH": f"{bin_dir}:{env['PATH']}"}
    entry = subprocess.Popen(
        [str(RECIPE / "entrypoint.sh")],
        env=entry_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert entry.stderr is not None
        assert "docker exec -it" in entry.stderr.readline(), "it says how to sign in"
        login = emulator.cli_login()  # what `docker exec -it icloudfs icloudfs login` does
        assert login.returncode == 0, login.stderr
        wait_for(lambda: os.path.ismount(mountpoint), timeout=60, what="the mount")
        (mountpoint / "from-a-container.txt").write_text("shared with the host\n")
        entry.send_signal(signal.SIGTERM)  # docker stop
        assert entry.wait(timeout=90) == 0
        assert not os.path.ismount(mountpoint)
        assert remote.files()["from-a-container.txt"] == b"shared with the host\n"
    finally:
        if entry.poll() is None:
            entry.kill()
        if os.path.ismount(mountpoint):
            subprocess.run(["fusermount3", "-uz", str(mountpoint)], check=False)


def test_stopping_before_a_sign_in_is_a_clean_exit(env: dict[str, str], tmp_path: Path) -> None:
    entry = subprocess.Popen(
        [str(RECIPE / "entrypoint.sh")],
        env={**env, "ICLOUDFS_MOUNTPOINT": str(tmp_path / "icloud")},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert entry.stderr is not None and "not signed in yet" in entry.stderr.readline()
    entry.send_signal(signal.SIGTERM)  # docker stop
    assert entry.wait(timeout=10) == 0
