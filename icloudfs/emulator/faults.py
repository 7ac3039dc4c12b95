"""The link model and injected failures, changeable at run time through ``/__emulator__/faults``.

* latency: added to every request before it is handled;
* bandwidth: ONE token bucket shared by every connection, so N parallel transfers
  split the cap instead of each getting it (content bytes only, both directions);
* rules: ``{"path": prefix, "status": 503|421|500|...|"drop"|"lost", "times": n | "rate": p,
  "method": optional}``; the first matching rule fires. ``times`` counts down and the
  rule disappears at zero; ``rate`` fires with that probability forever. ``drop`` closes
  the connection without an answer, the request not handled; ``lost`` handles it (the
  change is made) and then closes the connection without its answer, as a link that breaks
  on the way back does: the client cannot tell whether it happened.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

_BURST_SECONDS = 0.02  # the bucket holds this much of a second's allowance


class TokenBucket:
    """A shared byte budget; ``take`` waits until the bytes may pass."""

    def __init__(self, mbps: float) -> None:
        self._lock = asyncio.Lock()
        self.rate = 0.0
        self._level = 0.0
        self._stamp = time.monotonic()
        self.set_rate(mbps)

    def set_rate(self, mbps: float) -> None:
        self.rate = max(0.0, mbps) * 1_000_000 / 8
        self._level = 0.0
        self._stamp = time.monotonic()

    @property
    def burst(self) -> float:
        return max(16384.0, self.rate * _BURST_SECONDS)

    async def take(self, nbytes: int) -> None:
        if self.rate <= 0:
            return
        async with self._lock:  # FIFO: transfers are served in turn, so the cap is shared
            now = time.monotonic()
            self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
            self._level -= nbytes
            if self._level < 0:
                await asyncio.sleep(-self._level / self.rate)


@dataclass
class Rule:
    """One injected failure."""

    path: str
    status: int | str
    times: int | None = None
    rate: float | None = None
    method: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Rule:
        status = raw["status"]
        if status not in ("drop", "lost") and not isinstance(status, int):
            raise ValueError(f"status must be an HTTP code, 'drop' or 'lost', not {status!r}")
        times, rate = raw.get("times"), raw.get("rate")
        if times is None and rate is None:
            times = 1
        return cls(str(raw["path"]), status, times, rate, raw.get("method"))

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class Faults:
    """Current latency, bandwidth and failure rules."""

    def __init__(self, latency_ms: float, bandwidth_mbps: float) -> None:
        self._lock = threading.Lock()
        self.latency_ms = latency_ms
        self.bandwidth_mbps = bandwidth_mbps
        self.bucket = TokenBucket(bandwidth_mbps)
        self.rules: list[Rule] = []
        self._defaults = (latency_ms, bandwidth_mbps)

    def update(self, body: dict[str, Any]) -> None:
        """Apply a POSTed change; keys left out keep their value, ``rules`` replaces the list."""
        rules = [Rule.parse(r) for r in body.get("rules", [])] if "rules" in body else None
        with self._lock:
            if "latency_ms" in body:
                self.latency_ms = float(body["latency_ms"])
            if "bandwidth_mbps" in body:
                self.bandwidth_mbps = float(body["bandwidth_mbps"])
                self.bucket.set_rate(self.bandwidth_mbps)
            if rules is not None:
                self.rules = rules

    def clear(self) -> None:
        """Back to the command-line link settings, with no rules."""
        self.update({"latency_ms": self._defaults[0], "bandwidth_mbps": self._defaults[1], "rules": []})

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency_ms": self.latency_ms,
                "bandwidth_mbps": self.bandwidth_mbps,
                "rules": [r.as_json() for r in self.rules],
            }

    def pick(self, method: str, path: str) -> int | str | None:
        """The failure to inject for this request, if any (consuming one of a rule's ``times``)."""
        with self._lock:
            for rule in self.rules:
                if not path.startswith(rule.path) or (rule.method and rule.method.upper() != method):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                    return rule.status
                if rule.rate is not None and random.random() < rule.rate:
                    return rule.status
        return None
