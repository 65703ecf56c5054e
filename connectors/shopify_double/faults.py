"""Faults a test injects into the double: HTTP errors, THROTTLED bursts, slow answers,
dropped connections, at chosen points (by operation, after letting ``skip`` requests through).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

KINDS = ("status", "throttle", "drop", "delay")
TARGETS = ("graphql", "download", "upload", "any")


@dataclass(slots=True)
class Fault:
    """One fault rule; it fires on the next ``times`` matching requests.

    kind: ``status`` (answer ``status``, with ``Retry-After: retry_after`` when set),
    ``throttle`` (HTTP 200 with a THROTTLED error), ``drop`` (close the connection without
    an answer), ``delay`` (sleep ``seconds`` before answering).
    operation: only requests whose GraphQL document selects this root field (e.g.
    ``"customerCreate"``); ``None`` matches every request of the target.
    skip: let this many matching requests through first.
    after_effect: run the request first, then fail (``drop``/``status``/``delay``): the
    write happened but the client does not learn of it.
    target: ``graphql`` (default), ``download`` (bulk result files), ``upload`` (staged
    uploads) or ``any``.
    """

    kind: str
    times: int = 1
    status: int = 503
    seconds: float = 0.0
    retry_after: float | None = None
    operation: str | None = None
    skip: int = 0
    after_effect: bool = False
    target: str = "graphql"
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.target not in TARGETS:
            raise ValueError(f"unknown fault target {self.target!r}; use one of {TARGETS}")
        if self.times < 1 or self.skip < 0:
            raise ValueError("fault times must be >= 1 and skip >= 0")

    def matches(self, target: str, root_fields: tuple[str, ...]) -> bool:
        if self.target not in ("any", target):
            return False
        return self.operation is None or self.operation in root_fields


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

    def next(self, target: str, root_fields: tuple[str, ...]) -> Fault | None:
        """The fault to apply to this request, if any (skips and counts are consumed)."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(target, root_fields):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.fired += 1
                if fault.fired >= fault.times:
                    self._faults.remove(fault)
                return fault
            return None
