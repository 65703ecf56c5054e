"""Where the shipped rules and the JSON Schemas are, in a checkout and in an installed wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = [
    "locate",
    "schema_path",
    "schemas_dir",
    "shipped_rules_dir",
]

_CHECKOUT = Path(__file__).resolve().parent.parent


def _folder(name: str) -> Path:
    in_checkout = _CHECKOUT / name
    if in_checkout.is_dir():
        return in_checkout
    spec = importlib.util.find_spec(f"custsync.{name}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    raise FileNotFoundError(f"custsync's {name}/ folder is missing from this installation")


def shipped_rules_dir() -> Path:
    return _folder("rules")


def schemas_dir() -> Path:
    return _folder("schemas")


def schema_path(name: str) -> Path:
    """``schema_path("rules")`` -> .../schemas/rules.schema.json"""
    return schemas_dir() / f"{name}.schema.json"


def locate(shown: str | Path) -> Path:
    """The file behind a path as custsync shows it: as given (absolute, or relative to the
    working folder), else a shipped file as older plans showed it, ``rules/<file>``."""
    path = Path(shown)
    if path.is_absolute() or path.exists():
        return path
    shipped = shipped_rules_dir().parent / path
    return shipped if shipped.exists() else path
