"""What ``custsync sandbox`` and ``custsync bc-sandbox`` share: checking the port, reading
``--faults``, and serving a double on 127.0.0.1 until SIGINT/SIGTERM (as ``custsync demo
--serve`` serves until then)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..errors import ConfigError, UsageError
from .stopping import wait_for_stop_signal

Fault = TypeVar("Fault")


def check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: must be between 0 and 65535")


def parse_fault_options(specs: Iterable[str], parse: Callable[[str], list[Fault]]) -> list[Fault]:
    """Every ``--faults SPEC`` read with the double's ``parse``; a usage error names the bad
    one."""
    faults: list[Fault] = []
    for spec in specs:
        try:
            faults.extend(parse(spec))
        except ValueError as exc:
            raise UsageError(f"--faults {exc}") from None
    return faults


def serve_until_stopped(double: Any, port: int, banner: Callable[[], None]) -> None:
    """Start ``double`` (on 127.0.0.1:``port``), print ``banner()``, serve until SIGINT or
    SIGTERM, then stop it. A port that cannot be listened on is a ConfigError."""
    try:
        double.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    try:
        banner()
        wait_for_stop_signal()
    finally:
        double.stop()

