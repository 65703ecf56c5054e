"""Located problems in rule and config files, and how they are shown.

A :class:`Diagnostic` is one problem at one place::

    rules/export.yaml:14:9: error[unknown-fact] /rules/2/when/shopify.emial: unknown fact ...

``line`` and ``column`` are 1-based; ``0`` means "the whole file" (a folder that does not
exist, an unreadable file) and is rendered without ``:line:col``. ``pointer`` is the JSON
pointer of the node inside the document (``""`` is the document itself, shown as ``/``).
Rendering computes nothing: validation produces the list, this module only sorts and prints.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import DiagnosticsError
from .load import LoadedDocument

__all__ = [
    "Diagnostic",
    "Severity",
    "at",
    "count",
    "has_errors",
    "raise_on_errors",
    "render_json",
    "render_text",
    "sort_diagnostics",
    "summary",
]


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    path: str
    line: int  # 1-based; 0 = no position (the whole file or folder)
    column: int  # 1-based; 0 = no position
    severity: Severity
    code: str  # short kebab-case: yaml, schema, unknown-fact, ...
    pointer: str  # JSON pointer inside the document; "" = the document
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self) -> str:
        """``path:line:col: error[code] /json/pointer: message``"""
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        return f"{where}: {self.severity.value}[{self.code}] {self.pointer or '/'}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": self.severity.value,
            "code": self.code,
            "pointer": self.pointer,
            "message": self.message,
        }

    def sort_key(self) -> tuple[str, int, int, int, str, str, str]:
        return (
            self.path,
            self.line,
            self.column,
            0 if self.is_error else 1,
            self.code,
            self.pointer,
            self.message,
        )


def at(
    doc: LoadedDocument,
    pointer: str,
    code: str,
    message: str,
    severity: Severity = Severity.ERROR,
    *,
    key: bool = False,
) -> Diagnostic:
    """A diagnostic at ``pointer`` of ``doc`` (its nearest existing parent if it is missing).

    ``key=True`` points at the mapping key rather than at its value (unknown or duplicate
    properties, unknown fact names).
    """
    position = doc.key_position(pointer) if key else doc.position(pointer)
    return Diagnostic(doc.path, position.line, position.column, severity, code, pointer, message)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by file, position, errors before warnings; exact duplicates dropped."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def count(diagnostics: Iterable[Diagnostic]) -> tuple[int, int]:
    """(errors, warnings)"""
    errors = warnings = 0
    for diagnostic in diagnostics:
        if diagnostic.is_error:
            errors += 1
        else:
            warnings += 1
    return errors, warnings


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_text(diagnostics: Sequence[Diagnostic], limit: int | None = None) -> list[str]:
    """One line per diagnostic, sorted; with ``limit``, the first ``limit`` and a
    ``... N more (use -v to see all)`` line."""
    ordered = sort_diagnostics(diagnostics)
    if limit is None or len(ordered) <= limit:
        return [d.render() for d in ordered]
    shown = [d.render() for d in ordered[:limit]]
    errors, warnings = count(ordered[limit:])
    parts = [_plural(errors, "error")] if errors else []
    if warnings:
        parts.append(_plural(warnings, "warning"))
    shown.append(f"... {len(ordered) - limit} more ({', '.join(parts)}); use -v to see all")
    return shown


def render_json(diagnostics: Sequence[Diagnostic]) -> list[dict[str, Any]]:
    return [d.as_json() for d in sort_diagnostics(diagnostics)]


def summary(diagnostics: Sequence[Diagnostic], checked: str = "") -> str:
    """``invalid: 2 errors, 1 warning`` / ``valid: no problems`` (+ what was checked)."""
    errors, warnings = count(set(diagnostics))
    verdict = "invalid" if errors else "valid"
    parts = [_plural(errors, "error")] if errors else []
    if warnings:
        parts.append(_plural(warnings, "warning"))
    tail = f" ({checked})" if checked else ""
    return f"{verdict}: {', '.join(parts) or 'no problems'}{tail}"


def raise_on_errors(diagnostics: Sequence[Diagnostic]) -> None:
    """Raise :class:`DiagnosticsError` with the errors, if there are any."""
    errors = [d for d in sort_diagnostics(diagnostics) if d.is_error]
    if errors:
        raise DiagnosticsError(errors)
