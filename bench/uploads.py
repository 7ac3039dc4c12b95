"""The backend's upload path alone: small files uploaded by N threads straight through
``ICloudDrive`` (no FUSE, no cache), against the emulator on each link profile.

The mount's small-file figures mix this path with FUSE, the write-back and this machine's
noise; here only the HTTP calls and the client's CPU for them are measured, so a change to
the backend's HTTP path can be compared side by side. Prints a table of wall time and client
CPU per file for each worker count::

    python -m bench.uploads [--files 1000] [--workers 16,32,64] [--profiles lan,wan]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.servers import PROFILES, EmulatorServer
from icloudfs.icloud.account import Account, AuthState
from icloudfs.icloud.drive import ICloudDrive


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _signed_in(emulator: EmulatorServer, home: Path) -> ICloudDrive:
    info = emulator.info
    session = home / "session"
    session.mkdir(parents=True)
    account = Account(session_dir=session, endpoint=emulator.url, ca_file=emulator.ca)
    if account.login(info["apple_id"], info["password"], remember=False) is AuthState.NEEDS_2FA:
        account.submit_2fa(info["code"])
    return ICloudDrive(account, ca_file=emulator.ca)


def measure(drive: ICloudDrive, emulator: int, source: Path, files: int, workers: int) -> dict[str, float]:
    """Upload ``files`` copies of ``source`` into a new folder with ``workers`` threads
    (``emulator``: its pid, for its CPU time)."""
    folder = drive.mkdir(drive.root(), f"uploads-{workers}-{time.monotonic_ns()}")
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda n: drive.upload(folder, f"warm{n}", source, time.time()), range(workers)))
        cpu, emulator_cpu, started = time.process_time(), _cpu_seconds(emulator), time.perf_counter()
        list(pool.map(lambda n: drive.upload(folder, f"f{n}", source, time.time()), range(files)))
        wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "client_cpu_ms_per_file": (time.process_time() - cpu) / files * 1000,
        "emulator_cpu_ms_per_file": (_cpu_seconds(emulator) - emulator_cpu) / files * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--workers", default="16,32,64")
    parser.add_argument("--profiles", default="lan,wan")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="icloudfs-bench-uploads-") as tmp:
        home = Path(tmp)
        source = home / "small.bin"
        source.write_bytes(os.urandom(4096))
        emulator = EmulatorServer(home / "emulator", seeds=[])
        for name in args.profiles.split(","):
            profile = PROFILES[name]
            emulator.start(profile)
            try:
                assert emulator.proc is not None
                drive = _signed_in(emulator, home / name)
                for workers in counts:
                    figures = measure(drive, emulator.proc.pid, source, args.files, workers)
                    rows.append((name, workers, figures))
            finally:
                emulator.stop()
    print(f"{args.files} uploads of 4 KiB through ICloudDrive, no FUSE\n")
    print("| profile | workers | wall, s | client CPU per file, ms | emulator CPU per file, ms |")
    print("|---|---|---|---|---|")
    for name, workers, f in rows:
        print(
            f"| {name} | {workers} | {f['wall_s']:.2f} | {f['client_cpu_ms_per_file']:.2f} "
            f"| {f['emulator_cpu_ms_per_file']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
