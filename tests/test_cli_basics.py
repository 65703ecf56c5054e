from __future__ import annotations

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import main


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--no-such-option"])
    assert exc.value.code == exitcodes.USAGE
    assert "unrecognized arguments" in capsys.readouterr().err


def test_no_command_prints_help_and_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == exitcodes.USAGE
    assert "COMMAND" in capsys.readouterr().err
