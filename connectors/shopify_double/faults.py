"""Faults a test injects into the double: HTTP errors, THROTTLED bursts, slow answers,
dropped connections, at chosen points (by operation, after letting ``skip`` requests through).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

KINDS = ("status", "throttle", "drop", "delay")
TARGETS = ("graphql", "download", "upload", "any")
#: the options of a fault written as text (``parse_faults``), with their types
_OPTIONS: dict[str, type] = {
    "times": int,
    "status": int,
    "seconds": float,
    "retry_after": float,
    "operation": str,
    "skip": int,
    "after_effect": bool,
    "target": str,
}


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


def parse_faults(text: str) -> list[Fault]:
    """Faults written as text (``custsync sandbox --faults``): ``;``-separated, each
    ``KIND[:OPTION=VALUE,...]`` with the options of :class:`Fault`, e.g.
    ``drop:operation=customerCreate,after_effect`` or ``status:status=503,times=2``. A bare
    option is true; ``-`` may stand for ``_``. Raises ValueError saying what is wrong."""
    faults = []
    for spec in (part.strip() for part in text.split(";")):
        if not spec:
            continue
        kind, _, options = spec.partition(":")
        values: dict[str, object] = {}
        for option in (o.strip() for o in options.split(",") if o.strip()):
            name, has_value, raw = option.partition("=")
            name = name.strip().replace("-", "_")
            wanted = _OPTIONS.get(name)
            if wanted is None:
                raise ValueError(
                    f"{spec!r}: unknown option {name!r}; use {', '.join(_OPTIONS)}"
                )
            values[name] = _option_value(spec, name, wanted, raw.strip() if has_value else None)
        try:
            faults.append(Fault(kind=kind.strip(), **values))  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"{spec!r}: {exc}") from None
    if not faults:
        raise ValueError(f"{text!r}: no fault given (e.g. status:status=503,times=2)")
    return faults


def _option_value(spec: str, name: str, wanted: type, raw: str | None) -> object:
    if wanted is bool:
        if raw is None or raw.lower() in ("true", "yes", "1"):
            return True
        if raw.lower() in ("false", "no", "0"):
            return False
        raise ValueError(f"{spec!r}: {name} takes true or false, not {raw!r}")
    if raw is None or raw == "":
        raise ValueError(f"{spec!r}: {name} needs a value ({name}=...)")
    try:
        return wanted(raw)
    except ValueError:
        noun = "a whole number" if wanted is int else "a number"
        raise ValueError(f"{spec!r}: {name} takes {noun}, not {raw!r}") from None


def describe_fault(fault: Fault) -> str:
    """One line for a user: ``drop x1 on customerCreate after the write``."""
    parts = [fault.kind if fault.kind != "status" else f"status {fault.status}"]
    if fault.kind == "delay":
        parts.append(f"{fault.seconds:g}s")
    if fault.retry_after is not None:
        parts.append(f"Retry-After {fault.retry_after:g}")
    parts.append(f"x{fault.times}")
    if fault.operation:
        parts.append(f"on {fault.operation}")
    if fault.target != "graphql":
        parts.append(f"({fault.target} requests)")
    if fault.skip:
        parts.append(f"after {fault.skip} passed")
    if fault.after_effect:
        parts.append("after the request ran")
    return " ".join(parts)
