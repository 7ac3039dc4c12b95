"""Medians, the markdown table (absolute figures and icloudfs's ratio to each contender), the targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.servers import Profile

# metric -> (label, unit, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "ttfb_ms": ("time to first byte", "ms", False),
    "seq_cold_MBps": ("sequential read, cold", "MB/s", True),
    "seq_warm_MBps": ("re-read, page cache kept", "MB/s", True),
    "seq_dropped_MBps": ("re-read, page cache dropped", "MB/s", True),
    "rand4k_cold_iops": ("random 4 KiB, cold", "IOPS", True),
    "rand4k_cached_iops": ("random 4 KiB, cached", "IOPS", True),
    "rand256k_cold_MBps": ("random 256 KiB, cold", "MB/s", True),
    "rand256k_cached_MBps": ("random 256 KiB, cached", "MB/s", True),
    "lsR_cold_s": ("`ls -lR` tree, cold", "s", False),
    "lsR_warm_s": ("`ls -lR` tree, warm", "s", False),
    "find_cold_s": ("`find -type f` tree, cold", "s", False),
    "find_warm_s": ("`find -type f` tree, warm", "s", False),
    "du_warm_s": ("`du -s` tree, warm", "s", False),
    "rss_after_walk_MB": ("daemon RSS after the walk", "MB", False),
    "big_find_cold_s": ("`find -type f` big tree, cold", "s", False),
    "big_find_warm_s": ("`find -type f` big tree, warm", "s", False),
    "rss_after_big_walk_MB": ("daemon RSS after the big walk", "MB", False),
    "git_status_first_s": ("`git status`, first (index refreshed)", "s", False),
    "git_status_warm_s": ("`git status`, warm", "s", False),
    "git_status_touched_s": ("`git status`, one file touched", "s", False),
    "cp_small_returned_s": ("`cp -r` small files, returned", "s", False),
    "cp_small_stored_s": ("`cp -r` small files, stored", "s", False),
    "write_returned_MBps": ("big `cp`, until it returns", "MB/s", True),
    "write_stored_MBps": ("big `cp`, until stored", "MB/s", True),
    "upload_MBps": ("upload rate (after `cp` and the 1 s write-back delay)", "MB/s", True),
}

Results = dict[str, dict[str, dict[str, list[float]]]]  # profile -> metric -> contender -> runs


def medians(results: Results) -> dict[str, dict[str, dict[str, float]]]:
    return {
        profile: {m: {c: statistics.median(v) for c, v in by.items() if v} for m, by in metrics.items()}
        for profile, metrics in results.items()
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 1 else f"{value:.2g}"


def table(profile: Profile, figures: dict[str, dict[str, float]], contenders: list[str]) -> str:
    """Rows: metrics; columns: contenders (median), then icloudfs's advantage over each (>1 = better)."""
    others = [c for c in contenders if c != "icloudfs"]
    head = ["metric", "unit", *contenders, *[f"vs {c}" for c in others]]
    lines = [
        f"### {profile.name}: {profile.latency_ms:g} ms, {profile.mbps:g} Mbit/s "
        f"(link {profile.link_mb_s:g} MB/s)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for metric, (label, unit, higher) in METRICS.items():
        row = figures.get(metric, {})
        if not row:
            continue
        mine = row.get("icloudfs")
        ratios = []
        for other in others:
            theirs = row.get(other)
            if mine is None or theirs is None or mine == 0 or theirs == 0:
                ratios.append("-")
            else:
                ratios.append(f"{(mine / theirs if higher else theirs / mine):.2f}x")
        cells = [label, unit, *[_fmt(row.get(c)) for c in contenders], *ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class Target:
    profile: str
    text: str
    value: float | None
    goal: float
    met: bool | None

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def line(self) -> str:
        state = "n/a" if self.met is None else ("met" if self.met else "**NOT met**")
        shown = "-" if self.value is None else f"{self.value:.3g}"
        return f"| {self.profile} | {self.text} | {shown} | {self.goal:g} | {state} |"


def targets(profile: Profile, f: dict[str, dict[str, float]], full_tree: bool) -> list[Target]:
    def get(metric: str, contender: str) -> float | None:
        return f.get(metric, {}).get(contender)

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    def vs(metric: str, other: str) -> float | None:
        """icloudfs's figure of ``metric`` over ``other``'s."""
        return ratio(get(metric, "icloudfs"), get(metric, other))

    out: list[Target] = []

    def add(text: str, value: float | None, goal: float, at_most: bool = False) -> None:
        met = None if value is None else (value <= goal if at_most else value >= goal)
        out.append(Target(profile.name, text, value, goal, met))

    cold = get("seq_cold_MBps", "icloudfs")
    add("cold sequential read ÷ link bandwidth", ratio(cold, profile.link_mb_s), 0.9)
    if profile.name == "wan":
        add("cold sequential read ÷ rclone (cache off)", vs("seq_cold_MBps", "rclone-off"), 1.5)
    add("warm re-read ÷ tmpfs", vs("seq_warm_MBps", "tmpfs"), 0.9)
    add("re-read from disk cache ÷ in-memory FUSE", vs("seq_dropped_MBps", "memfs"), 0.5)
    add("re-read from disk cache ÷ rclone (cache full)", vs("seq_dropped_MBps", "rclone-full"), 2.0)
    if profile.name == "wan":
        label = "cold `ls -lR` of the tree, s" + ("" if full_tree else " (QUICK: smaller tree)")
        add(label, get("lsR_cold_s", "icloudfs"), 2.0, at_most=True)
        add(
            "`cp -r` small files stored: rclone (writes) time ÷ icloudfs time",
            ratio(get("cp_small_stored_s", "rclone-writes"), get("cp_small_stored_s", "icloudfs")),
            5.0,
        )
    add(
        "big `cp` returns ÷ local disk write (cp + sync)",
        ratio(get("write_returned_MBps", "icloudfs"), get("write_stored_MBps", "disk")),
        0.5,
    )
    add("upload ÷ link bandwidth", ratio(get("upload_MBps", "icloudfs"), profile.link_mb_s), 0.9)
    add("daemon RSS after the walk, MB", get("rss_after_walk_MB", "icloudfs"), 200, at_most=True)
    for metric, what in (("find_warm_s", "warm `find -type f`"), ("lsR_warm_s", "warm `ls -lR`")):
        add(f"{what} ÷ tmpfs", vs(metric, "tmpfs"), 3.0, at_most=True)
        add(f"{what} ÷ rclone (cache full)", vs(metric, "rclone-full"), 0.5, at_most=True)
    add("warm `git status` ÷ tmpfs", vs("git_status_warm_s", "tmpfs"), 3.0, at_most=True)
    big = "" if full_tree else " (QUICK: smaller tree)"
    add(
        f"daemon RSS after the big walk, MB{big}", get("rss_after_big_walk_MB", "icloudfs"), 200, at_most=True
    )
    add(
        f"cold `find` of the big tree ÷ rclone (cache full){big}",
        vs("big_find_cold_s", "rclone-full"),
        0.5,
        True,
    )
    return out


def targets_table(all_targets: list[Target]) -> str:
    lines = ["| profile | target | value | goal | |", "|---|---|---|---|---|"]
    lines += [t.line() for t in all_targets]
    return "\n".join(lines)
