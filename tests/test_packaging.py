"""pyproject.toml: what setuptools warns about at ``pip install`` (and would stop accepting).

A folder of shipped files that is not listed in ``packages`` ("Package would be ignored")
and a ``project.license`` table (deprecated) both printed warnings at every install.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _package_folders() -> dict[str, Path]:
    """Every folder below a package-dir root that holds files, as its package name."""
    folders: dict[str, Path] = {}
    for package, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items():
        root = ROOT / folder
        for path in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            if path.name == "__pycache__" or not any(p.is_file() for p in path.iterdir()):
                continue
            relative = path.relative_to(root).parts
            folders[".".join((package, *relative))] = path
    return folders


def test_every_folder_of_shipped_files_is_a_listed_package() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    folders = _package_folders()
    assert "custsync.rules.tests.overrides" in folders  # the walk sees the nested rule tests
    assert sorted(set(folders) - listed) == []


def test_shipped_rules_and_their_tests_are_package_data() -> None:
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for package in ("custsync.rules", "custsync.rules.tests", "custsync.rules.tests.overrides"):
        assert "*.yaml" in data[package], package


def test_license_is_an_spdx_expression() -> None:
    assert isinstance(PYPROJECT["project"]["license"], str)
    requires = PYPROJECT["build-system"]["requires"]
    assert "setuptools>=77" in requires  # the first release that reads a license expression
