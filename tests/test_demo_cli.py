"""`custsync demo` end to end on a small data set: it succeeds, and what it tells a new user
to try next exists (it pointed at a seed file that was never shipped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import main


def test_demo_runs_and_its_suggestions_point_at_real_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo"
    assert main(["demo", "--dir", str(folder), "--customers", "20", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "== 4. The next sync is incremental" in out

    config = folder / "custsync.yaml"
    first_line = config.read_text(encoding="utf-8").splitlines()[0]
    schema = first_line.partition("$schema=")[2]
    assert Path(schema).is_file(), first_line  # the editor finds the schema wherever the demo is

    suggestions = out.partition("== Try next")[2]
    for path in re.findall(r"(?:--world|--seed|--config) (\S+)", suggestions):
        assert Path(path).exists(), path
    assert main(["validate", "--config", str(config)]) == exitcodes.OK
