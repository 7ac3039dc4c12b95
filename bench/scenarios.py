"""The measurements. Each scenario takes one contender through fresh mount(s) and returns figures;
``raw_link`` measures the link itself with ``curl``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.contenders import WRITE_BACK_S, Contender
from bench.procs import child_env, drop_caches, rss_mb, timed
from bench.servers import poll

MB = 1_000_000


@dataclass(frozen=True)
class Sizes:
    big: int
    ttfb: int
    tree_files: int
    tree_folders: int
    tree_bytes: int
    small_files: int
    small_bytes: int
    rand4k_ios: int
    rand256k_ios: int
    repo_files: int  # the git checkout
    big_tree_files: int
    big_tree_folders: int

    @property
    def tree(self) -> str:
        return f"tree-{self.tree_files}-{self.tree_folders}"

    @property
    def big_tree(self) -> str:
        return f"tree-{self.big_tree_files}-{self.big_tree_folders}"

    @property
    def repo(self) -> str:
        return f"repo-{self.repo_files}"


FULL = Sizes(1 << 30, 4 << 20, 10_000, 500, 1024, 1000, 4096, 200, 60, 2_000, 100_000, 2_000)
QUICK = Sizes(64 << 20, 4 << 20, 2_000, 100, 1024, 200, 4096, 30, 15, 500, 20_000, 400)


@dataclass
class Context:
    sizes: Sizes
    small_source: Path  # the files `cp -r` copies in
    big_source: Path  # the file the 1 GiB write copies in
    tag: str = ""  # makes written names unique per run


Figures = dict[str, float]
Scenario = Callable[[Contender, Context], Figures]


def _dd(path: Path, size: int) -> float:
    """MB/s of a sequential ``dd bs=1M`` read."""
    return size / timed(["dd", f"if={path}", "of=/dev/null", "bs=1M"]) / MB


def sequential(c: Contender, ctx: Context) -> Figures:
    c.start(fresh=True)
    try:
        drop_caches()
        started = time.perf_counter()
        fd = os.open(c.root / "ttfb.bin", os.O_RDONLY)
        os.read(fd, 1)
        ttfb = time.perf_counter() - started
        os.close(fd)
        big, size = c.root / "big.bin", ctx.sizes.big
        cold = _dd(big, size)
        warm = _dd(big, size)
        drop_caches()
        dropped = _dd(big, size)
    finally:
        c.stop()
    return {"ttfb_ms": ttfb * 1000, "seq_cold_MBps": cold, "seq_warm_MBps": warm, "seq_dropped_MBps": dropped}


def _fio(path: Path, size: int, block: str, ios: int) -> tuple[float, float]:
    """(IOPS, MB/s) of ``ios`` random ``psync`` reads; the same offsets every time (``randrepeat``)."""
    out = subprocess.run(
        [
            "fio",
            "--name=rand",
            f"--filename={path}",
            "--readonly",
            "--rw=randread",
            f"--bs={block}",
            "--ioengine=psync",
            f"--size={size}",
            f"--number_ios={ios}",
            "--randrepeat=1",
            "--invalidate=1",
            "--output-format=json",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
    ).stdout
    read = json.loads(out[out.index("{") :])["jobs"][0]["read"]
    return float(read["iops"]), float(read["bw_bytes"]) / MB


def random_reads(c: Contender, ctx: Context) -> Figures:
    """Cold: fresh mount, empty caches. Cached: the same offsets again, page cache dropped."""
    figures: Figures = {}
    for block, ios, unit in (("4k", ctx.sizes.rand4k_ios, "iops"), ("256k", ctx.sizes.rand256k_ios, "MBps")):
        c.start(fresh=True)
        try:
            for state in ("cold", "cached"):
                drop_caches()
                iops, mbps = _fio(c.root / "big.bin", ctx.sizes.big, block, ios)
                figures[f"rand{block}_{state}_{unit}"] = iops if unit == "iops" else mbps
        finally:
            c.stop()
    return figures


def _count_files(root: Path) -> int:
    out = subprocess.run(["find", str(root), "-type", "f"], check=True, capture_output=True, text=True).stdout
    return len(out.splitlines())


def _cold_then_warm(command: str) -> tuple[float, float]:
    """Seconds of ``command`` run twice on a just-started mount: page cache dropped, then warm."""
    drop_caches()
    return timed(command, shell=True), timed(command, shell=True)


def _find(tree: Path) -> str:
    return f"find '{tree}' -type f | wc -l > /dev/null"


def _daemon_rss(c: Contender, figures: Figures, metric: str) -> None:
    pid = c.pid()
    if pid is not None:
        figures[metric] = rss_mb(pid)


def tree_walk(c: Contender, ctx: Context) -> Figures:
    tree = c.root / ctx.sizes.tree
    figures: Figures = {}
    c.start(fresh=True)
    try:
        figures["lsR_cold_s"], figures["lsR_warm_s"] = _cold_then_warm(f"ls -lR '{tree}' > /dev/null")
    finally:
        c.stop()
    c.start(fresh=True)
    try:
        figures["find_cold_s"], figures["find_warm_s"] = _cold_then_warm(_find(tree))
        figures["du_warm_s"] = timed(["du", "-s", str(tree)])
        found = _count_files(tree)
        if found != ctx.sizes.tree_files:
            raise RuntimeError(f"{c.name}: find saw {found} files, expected {ctx.sizes.tree_files}")
        timed(f"ls -lR '{tree}' > /dev/null", shell=True)
        _daemon_rss(c, figures, "rss_after_walk_MB")
    finally:
        c.stop()
    return figures


def big_tree_walk(c: Contender, ctx: Context) -> Figures:
    """``find`` of the big tree, cold then warm, and what the daemon holds after it."""
    tree = c.root / ctx.sizes.big_tree
    figures: Figures = {}
    c.start(fresh=True)
    try:
        figures["big_find_cold_s"], figures["big_find_warm_s"] = _cold_then_warm(_find(tree))
        _daemon_rss(c, figures, "rss_after_big_walk_MB")
    finally:
        c.stop()
    return figures


def git_status(c: Contender, ctx: Context) -> Figures:
    """``git status`` in the checkout: first (git stats every file and reads each whose stat
    differs from its index, then rewrites the index), warm, and after one file is touched."""
    repo = c.root / ctx.sizes.repo
    status = ["git", "-c", f"safe.directory={repo}", "-C", str(repo), "status", "--porcelain"]
    figures: Figures = {}
    c.start(fresh=True)
    try:
        drop_caches()
        figures["git_status_first_s"] = timed(status)
        figures["git_status_warm_s"] = min(timed(status) for _ in range(3))
        first_file = next(p for p in sorted((repo / "src").rglob("*")) if p.is_file())
        os.utime(first_file)
        figures["git_status_touched_s"] = timed(status)
    finally:
        c.stop()
    return figures


def small_copy(c: Contender, ctx: Context) -> Figures:
    """``cp -r`` of many small files; until ``cp`` returns and until the remote has them all."""
    folder = f"up-small{ctx.tag}"
    c.start(fresh=True)
    try:
        mark = c.mark()
        started = time.perf_counter()
        subprocess.run(["cp", "-r", str(ctx.small_source), str(c.root / folder)], check=True)
        returned = time.perf_counter()
        stored = poll(lambda: c.stored(mark, folder, ctx.sizes.small_files, ctx.sizes.small_bytes), 900)
    finally:
        c.stop()
    return {"cp_small_returned_s": returned - started, "cp_small_stored_s": stored - started}


def big_write(c: Contender, ctx: Context) -> Figures:
    """``cp`` of one big file; until ``cp`` returns and until it is stored remotely (or synced)."""
    folder = f"up-big{ctx.tag}"
    size = ctx.big_source.stat().st_size
    subprocess.run(["cat", str(ctx.big_source)], check=True, stdout=subprocess.DEVNULL)  # source in RAM
    c.start(fresh=True)
    try:
        (c.root / folder).mkdir(exist_ok=True)
        mark = c.mark()
        started = time.perf_counter()
        subprocess.run(["cp", str(ctx.big_source), str(c.root / folder / "big.bin")], check=True)
        returned = time.perf_counter()
        stored = poll(lambda: c.stored(mark, folder, 1, size), 1800, interval=0.1)
        shutil.rmtree(c.root / folder, ignore_errors=True)
    finally:
        c.stop()
    quiet = WRITE_BACK_S if c.remote else 0.0  # the upload starts after the write-back delay
    return {
        "write_returned_MBps": size / (returned - started) / MB,
        "write_stored_MBps": size / (stored - started) / MB,
        "upload_MBps": size / max(1e-6, stored - returned - quiet) / MB,
    }


def disk_blocks(blocks: Path, size: int) -> Figures:
    """The disk's own ceiling for a re-read from the content cache: the same bytes as files of
    one cache block each (as the cache keeps them), read with ``cat`` after dropping caches."""
    drop_caches()
    return {"seq_dropped_MBps": size / timed(f"cat '{blocks}'/* > /dev/null", shell=True) / MB}


def raw_link(url: str, ca: str, size: int, connections: int = 8) -> Figures:
    """The link's own ceiling: ``curl`` ranged GETs of ``big.bin`` straight from the emulator."""
    env = child_env()

    def curl(first: int, last: int) -> float:
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--fail",
                "--cacert",
                ca,
                "-r",
                f"{first}-{last}",
                "-o",
                "/dev/null",
                "-w",
                "%{time_starttransfer}",
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
        return float(out)

    drop_caches()
    ttfb = curl(0, 0)
    part = -(-size // connections)
    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(lambda i: curl(i * part, min(size, (i + 1) * part) - 1), range(connections)))
    elapsed = time.perf_counter() - started
    return {"ttfb_ms": ttfb * 1000, "seq_cold_MBps": size / elapsed / MB}


SCENARIOS: dict[str, Scenario] = {
    "sequential": sequential,
    "random": random_reads,
    "tree": tree_walk,
    "big-tree": big_tree_walk,
    "git": git_status,
    "small-copy": small_copy,
    "big-write": big_write,
}
