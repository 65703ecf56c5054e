"""Shared test fixtures. Fixture modules live in tests/fixtures_*.py and are loaded here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def project_root() -> Path:
    return ROOT

pytest_plugins = ["fixtures_shopify", "fixtures_db", "fixtures_bc", "fixtures_brokers"]
