"""``icloudfs demo`` as a user runs it: its control plane listens where ICLOUDFS_CONTROL_ADDR says,
start-up shows its steps as plain lines off a terminal, and Ctrl-C unmounts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from icloudfs.control.client import ControlClient, ControlError
from tests.ops.conftest import wait_for
from tests.support.ports import free_port


def test_demo_honours_the_configured_control_address(tmp_path: Path) -> None:
    mountpoint, port = tmp_path / "demo-mnt", free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "icloudfs", "demo", str(mountpoint)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ICLOUDFS_CONTROL_ADDR": f"127.0.0.1:{port}", "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own group: the emulator it starts goes with it in teardown
    )
    client = ControlClient("127.0.0.1", port, timeout=2.0)

    def serving() -> bool:
        with contextlib.suppress(ControlError):
            return client.status().mount.mountpoint == str(mountpoint)
        return demo.poll() is not None  # exited early: fail below with its output

    try:
        wait_for(serving, timeout=90, what="the demo's control plane")
        assert demo.poll() is None, demo.communicate()
        assert os.path.ismount(mountpoint)
        assert "LegalCases" in os.listdir(mountpoint)
        assert "icloudfs_fuse_op_seconds_count" in client.metrics()
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = demo.communicate(timeout=60)
    finally:
        client.close()
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == 0, err
    assert not os.path.ismount(mountpoint)
    steps = [line for line in err.splitlines() if line.startswith("[")]
    assert steps == [
        "[1/4] starting the emulator",
        "[2/4] signing in as demo@icloudfs.test (SRP)",
        "[3/4] two-factor code",
        f"[4/4] mounting on {mountpoint}",
    ]
    assert "\x1b" not in err
    assert f"iCloud Drive (emulated) is mounted on {mountpoint}" in out
