"""Faults a test injects into the BC double: an HTTP status (5xx, 429 with Retry-After), a
dropped connection, a slow answer; chosen by method and entity set, after ``skip`` requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..doubles_faults import FaultPlan, parse_fault_specs

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan", "parse_faults"]

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
    learn of it (a ``delay`` then delays the answer, not the request).
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


#: the options of a fault written as text (``parse_faults``), with their types
_OPTIONS: dict[str, type] = {"times": int, "status": int, "seconds": float, "retry_after": float,
                             "method": str, "target": str, "skip": int, "after_effect": bool}


def parse_faults(text: str) -> list[Fault]:
    """Faults written as text (``custsync bc-sandbox --faults``), in the Shopify sandbox's
    form: ``;``-separated, each ``KIND[:OPTION=VALUE,...]`` with the options of
    :class:`Fault`, e.g. ``status:status=503,times=2,target=customers`` or
    ``drop:method=POST,after_effect``. Raises ValueError saying what is wrong."""
    return parse_fault_specs(text, Fault, _OPTIONS,
                             "status:status=503,times=2,target=customers")
