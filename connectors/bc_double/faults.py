"""Faults a test injects into the BC double: an HTTP status (5xx, 429 with Retry-After), a
dropped connection, a slow answer; chosen by method and entity set, after ``skip`` requests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

FAULT_KINDS = ("status", "drop", "delay")


@dataclass(slots=True)
class Fault:
    """One fault rule; it fires on the next ``times`` matching requests.

    kind: ``status`` (answer ``status`` in BC's error envelope, with ``Retry-After`` when
    ``retry_after`` is set), ``drop`` (the connection closes without a complete answer),
    ``delay`` (wait ``seconds``, then answer normally).
    method: only this HTTP method (``"POST"``); None = any.
    target: only this entity set or route (``"customers"``, ``"companies"``, ``"$batch"``,
    ``"token"``, a page's service name); None = any API or page request (not the token).
    skip: let this many matching requests through first.
    after_effect: run the request first, then fail: the write happened, the client does not
    learn of it.
    """

    kind: str
    times: int = 1
    status: int = 503
    seconds: float = 0.0
    retry_after: float | None = None
    method: str | None = None
    target: str | None = None
    skip: int = 0
    after_effect: bool = False
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of "
                             f"{', '.join(FAULT_KINDS)}")
        if self.times < 1 or self.skip < 0:
            raise ValueError("fault times must be >= 1 and skip >= 0")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ValueError(f"fault status {self.status} is not an error status")

    def matches(self, method: str, target: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.target is None:
            return target != "token"
        return self.target == target


def parse_fault(text: str) -> Fault:
    """``KIND[:VALUE][@METHOD][/TARGET][xTIMES]`` for the CLI, e.g. ``status:503/customers``,
    ``status:429@POST x3``, ``drop/customers``, ``delay:2``."""
    spec = text.replace(" ", "")
    times = 1
    if "x" in spec.rsplit("/", 1)[-1]:
        spec, _, count = spec.rpartition("x")
        times = int(count)
    target = None
    if "/" in spec:
        spec, _, target = spec.partition("/")
    method = None
    if "@" in spec:
        spec, _, method = spec.partition("@")
    kind, _, value = spec.partition(":")
    if kind == "status":
        return Fault("status", times=times, status=int(value or 503), method=method,
                     target=target)
    if kind == "delay":
        return Fault("delay", times=times, seconds=float(value or 1), method=method,
                     target=target)
    return Fault(kind, times=times, method=method, target=target)


class FaultPlan:
    """The faults armed on one double, consumed in injection order."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def next(self, method: str, target: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, target):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.fired += 1
                if fault.fired >= fault.times:
                    self._faults.remove(fault)
                return fault
            return None
