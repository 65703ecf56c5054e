"""Faults a test injects into the double: HTTP errors, THROTTLED bursts, slow answers,
dropped connections, at chosen points (by operation, after letting ``skip`` requests through).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..doubles_faults import FaultPlan, parse_fault_specs

__all__ = ["Fault", "FaultPlan", "describe_fault", "parse_faults"]

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


def parse_faults(text: str) -> list[Fault]:
    """Faults written as text (``custsync sandbox --faults``): ``;``-separated, each
    ``KIND[:OPTION=VALUE,...]`` with the options of :class:`Fault`, e.g.
    ``drop:operation=customerCreate,after_effect`` or ``status:status=503,times=2``. A bare
    option is true; ``-`` may stand for ``_``. Raises ValueError saying what is wrong."""
    return parse_fault_specs(text, Fault, _OPTIONS, "status:status=503,times=2")


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
