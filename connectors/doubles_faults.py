"""What the local test doubles (Shopify's and Business Central's) share about injected faults:
the plan that hands them out in injection order, and the text form ``--faults`` takes.

Each double has its own fault record (what a request is matched on differs: GraphQL root
fields for Shopify, HTTP method and entity set for BC); it only needs ``times``, ``skip``,
``fired`` and ``matches(...)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar


class MatchableFault(Protocol):
    times: int
    skip: int
    fired: int

    def matches(self, *request: Any) -> bool: ...


F = TypeVar("F", bound=MatchableFault)


class FaultPlan(Generic[F]):
    """The faults armed on one double, consumed in injection order."""

    def __init__(self) -> None:
        self._faults: list[F] = []
        self._lock = threading.Lock()

    def add(self, fault: F) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[F]:
        with self._lock:
            return list(self._faults)

    def next(self, *request: Any) -> F | None:
        """The fault to apply to this request (``fault.matches(*request)``), if any; skips
        and counts are consumed."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(*request):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.fired += 1
                if fault.fired >= fault.times:
                    self._faults.remove(fault)
                return fault
            return None


def parse_fault_specs(text: str, make: Callable[..., F], options: Mapping[str, type],
                      example: str) -> list[F]:
    """Faults written as text: ``;``-separated, each ``KIND[:OPTION=VALUE,...]`` with the
    ``options`` of the double's fault record (``make(kind=..., **options)``). A bare option
    is true; ``-`` may stand for ``_``. Raises ValueError saying what is wrong."""
    faults = []
    for spec in (part.strip() for part in text.split(";")):
        if not spec:
            continue
        kind, _, rest = spec.partition(":")
        values: dict[str, object] = {}
        for option in (o.strip() for o in rest.split(",") if o.strip()):
            name, has_value, raw = option.partition("=")
            name = name.strip().replace("-", "_")
            wanted = options.get(name)
            if wanted is None:
                raise ValueError(f"{spec!r}: unknown option {name!r}; use {', '.join(options)}")
            values[name] = _option_value(spec, name, wanted, raw.strip() if has_value else None)
        try:
            faults.append(make(kind=kind.strip(), **values))
        except ValueError as exc:
            raise ValueError(f"{spec!r}: {exc}") from None
    if not faults:
        raise ValueError(f"{text!r}: no fault given (e.g. {example})")
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
