"""Golden corpus of bad (and a few good) rule and config files: ``custsync validate`` output.

Each folder of ``tests/golden/validate/`` is one case: rule folders and/or a ``custsync.yaml``,
an optional ``args`` file (command-line arguments, one per line; default: ``--no-shipped``,
``--rules rules`` when ``rules/`` exists, ``--config custsync.yaml`` when it exists) and
``expected.txt``: stderr, stdout and the exit code. The shipped rules are never used, so the
corpus does not depend on them.

Regenerate after an intended change: ``CUSTSYNC_UPDATE_GOLDEN=1 pytest tests/test_validate_golden.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from custsync.engine.cli import main

GOLDEN = Path(__file__).parent / "golden" / "validate"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
UPDATE = os.environ.get("CUSTSYNC_UPDATE_GOLDEN") == "1"


def _args(case: Path) -> list[str]:
    args_file = case / "args"
    if args_file.is_file():
        args = [line for line in args_file.read_text(encoding="utf-8").splitlines() if line]
    else:
        args = ["--no-shipped"]
        if (case / "rules").is_dir():
            args += ["--rules", "rules"]
    if (case / "custsync.yaml").is_file() and "--config" not in args:
        args += ["--config", "custsync.yaml"]
    return ["validate", "-v", *args]


@pytest.mark.parametrize("name", CASES)
def test_golden(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = GOLDEN / name
    monkeypatch.chdir(case)
    code = main(_args(case))
    out, err = capsys.readouterr()
    actual = f"{err}--- stdout\n{out}--- exit {code}\n"
    expected_file = case / "expected.txt"
    if UPDATE or not expected_file.exists():
        expected_file.write_text(actual, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"wrote {expected_file}; review it and commit")
    assert actual == expected_file.read_text(encoding="utf-8")
    assert "Traceback" not in actual
    assert code == (1 if "error[" in err else 0)


def test_every_code_has_a_golden_case() -> None:
    """Each diagnostic code the validator can emit appears in some expected output."""
    seen = "".join(
        (GOLDEN / name / "expected.txt").read_text(encoding="utf-8")
        for name in CASES
        if (GOLDEN / name / "expected.txt").exists()
    )
    codes = [
        "yaml", "encoding", "empty", "duplicate-key", "schema", "unknown-decision",
        "unknown-action", "misplaced-action", "missing-param", "unknown-param", "param-type",
        "param-value", "placeholder", "unknown-fact", "fact-scope", "fact-value", "fact-type",
        "empty-value", "unsupported-operator", "unknown-operator", "in-too-long",
        "duplicate-id", "unknown-disable", "unreachable", "no-fallback", "unknown-field",
        "max-length", "io", "empty-folder", "secret-in-file", "missing-token-env",
        "update-flags", "iso-code", "duplicate-country", "duplicate-county", "cron",
        "duplicate-shop", "url",
    ]  # fmt: skip
    missing = [code for code in codes if f"[{code}]" not in seen]
    assert not missing, f"no golden case shows: {missing}"
