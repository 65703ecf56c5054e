"""custsync's errors, sorted by what the caller should do.

::

    CustsyncError                      base; ``render()`` gives the one-line message
    ├── UsageError                     bad command line (exit 64)
    ├── ConfigError                    fix the configuration or rule files, then rerun
    │   └── DiagnosticsError           carries file:line:col diagnostics (see diagnostics.py)
    ├── FatalError                     stop the run; retrying will not help (4xx, auth, schema)
    │   └── StalePlanError             a saved plan's target changed since planning
    ├── RetriableError                 transient (429/5xx/THROTTLED/transport); retry with backoff
    └── RecordError                    this one record failed; report it and carry on
        └── RecordRefused              the target refuses the record as it is (a value it
                                       rejects, a duplicate, a link another record holds):
                                       the same write fails the same way until the record
                                       changes, so it is parked at once (docs/attention.md)

Errors carry structured fields and never secrets: access tokens are not in any message, and
e-mail addresses are masked where a message might reach a log.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "CustsyncError",
    "DiagnosticsError",
    "FatalError",
    "RecordError",
    "RecordRefused",
    "RetriableError",
    "StalePlanError",
    "UsageError",
    "mask_email",
]


class CustsyncError(Exception):
    """Base class; ``render`` is the user-facing one-line message."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def render(self) -> str:
        return self.message


class UsageError(CustsyncError):
    """Bad command-line usage."""


class ConfigError(CustsyncError):
    """A configuration or rule file problem the user must fix."""


class DiagnosticsError(ConfigError):
    """One or more located diagnostics (``path:line:col: error[code] /pointer: message``)."""

    def __init__(self, diagnostics: list[Any]) -> None:
        self.diagnostics = diagnostics
        first = diagnostics[0].render() if diagnostics else "invalid input"
        more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
        super().__init__(first + more)


class FatalError(CustsyncError):
    """Stop the run: retrying will not help (authentication, 4xx, GraphQL errors)."""


class StalePlanError(FatalError):
    """A saved plan no longer matches its targets."""


class RetriableError(CustsyncError):
    """Transient failure; the operation may succeed when retried after a pause."""

    def __init__(self, message: str, retry_after: float | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after


class RecordError(CustsyncError):
    """One record failed; the run reports it and continues with the next."""

    def __init__(self, message: str, record: str = "", reason_code: str = "", **fields: Any):
        super().__init__(message, **fields)
        self.record = record
        self.reason_code = reason_code


class RecordRefused(RecordError):
    """The target refused this record for good: Shopify's ``userErrors``, an ERP's validation
    (a value too long, a code it does not know, a duplicate). Sending it again unchanged gives
    the same answer, so the run parks it on the attention list at once; it comes back when
    the record changes or on ``custsync attention retry``. A failure that may go away by
    itself (5xx, 429, a timeout, a record changed since it was read) is not one of these.

    Writers that return results instead of raising say the same with ``refused=True``
    (``ErpWriteResult``, ``ShopifyWriteResult``)."""


def mask_email(value: str) -> str:
    """``jane.doe@example.com`` -> ``j***@example.com`` for logs and error messages (for a
    text with several ``@``, everything before the last one is masked)."""
    if "@" not in value:
        return value
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}***@{domain}"
