from __future__ import annotations

import argparse

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import build_parser, main


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--no-such-option"])
    assert exc.value.code == exitcodes.USAGE
    assert "unrecognized arguments" in capsys.readouterr().err


def test_no_command_prints_help_and_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == exitcodes.USAGE
    assert "COMMAND" in capsys.readouterr().err


def _commands() -> list[tuple[tuple[str, ...], bool]]:
    """Every command and subcommand path of the parser (``plan``, ``erp load``, ...), and
    whether it takes positional arguments."""
    found: list[tuple[tuple[str, ...], bool]] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    positionals = any(
                        not a.option_strings and not isinstance(a, argparse._SubParsersAction)
                        for a in sub._actions
                    )
                    found.append(((*path, name), positionals))
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return found


COMMANDS = _commands()
ARGUMENT_ERRORS = [
    pytest.param(command, extra, id=f"{' '.join(command)} {extra}")
    for command, positionals in COMMANDS
    for extra in ("--no-such-option", *(() if positionals else ("extra",)))
]


def test_every_command_is_listed() -> None:
    commands = {command for command, _ in COMMANDS}
    assert {("plan",), ("sync",), ("erp", "load"), ("rules", "list")} <= commands
    assert len(ARGUMENT_ERRORS) > len(COMMANDS)


@pytest.mark.parametrize(("command", "extra"), ARGUMENT_ERRORS)
def test_an_argument_error_prints_the_commands_own_usage(
    command: tuple[str, ...], extra: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`custsync plan extra` printed `custsync`'s usage; it is `plan`'s, exit 64."""
    with pytest.raises(SystemExit) as exc:
        main([*command, extra])
    assert exc.value.code == exitcodes.USAGE
    out, err = capsys.readouterr()
    prog = "custsync " + " ".join(command)
    assert out == ""
    assert err.startswith(f"usage: {prog} "), err
    assert f"\n{prog}: error: " in err, err


def test_an_extra_argument_after_a_positional_is_the_commands_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["erp", "load", "customers.csv", "extra"])
    assert exc.value.code == exitcodes.USAGE
    err = capsys.readouterr().err
    assert err.startswith("usage: custsync erp load ")
    assert err.endswith("custsync erp load: error: unrecognized arguments: extra\n")
