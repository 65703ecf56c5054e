"""Faults a test injects into the BC double: an HTTP status (5xx, 429 with Retry-After), a
dropped connection, a slow answer; chosen by method and entity set, after ``skip`` requests.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

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


_SPEC = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<value>[0-9.]+))?(?:@(?P<method>[A-Za-z]+))?"
                   r"(?:/(?P<target>[^\s]+?))?(?:\s*x(?P<times>\d+))?$")


def parse_fault(text: str) -> Fault:
    """``KIND[:VALUE][@METHOD][/TARGET][xTIMES]`` for the CLI, e.g. ``status:503/customers``,
    ``status:429@POST/customers x3``, ``drop/$batch``, ``delay:2``."""
    match = _SPEC.match(text.strip())
    if match is None:
        raise ValueError(f"fault {text!r}: expected KIND[:VALUE][@METHOD][/TARGET][xTIMES], "
                         "e.g. status:503@POST/customers x2")
    kind, value = match["kind"], match["value"]
    common: dict[str, Any] = {"times": int(match["times"] or 1), "method": match["method"],
                              "target": match["target"]}
    if kind == "status":
        return Fault("status", status=int(float(value or 503)), **common)
    if kind == "delay":
        return Fault("delay", seconds=float(value or 1), **common)
    return Fault(kind, **common)


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
