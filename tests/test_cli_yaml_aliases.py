"""YAML aliases in every file custsync reads: a loop or a "billion laughs" expansion is one
located line on stderr, never a RecursionError traceback or gigabytes of memory (issue 10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import main

LOOP = "x: &a [*a]\n"
LAUGHS = (
    "\n".join(
        ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 9)]
    )
    + "\n"
)


def _one_located_error(err: str, path: Path, position: str) -> None:
    assert "Traceback" not in err and "RecursionError" not in err and "MemoryError" not in err
    assert f"{path}:{position}" in err
    assert len(err.splitlines()) <= 3


@pytest.mark.parametrize(
    ("text", "position", "what"),
    [
        (LOOP, "1:8", "used inside the node it names"),
        (LAUGHS, "5:10", "aliases expand to more than"),
    ],
)
def test_validate_plan_and_rules_test_refuse_aliases_in_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, position: str, what: str
) -> None:
    config = tmp_path / "custsync.yaml"
    config.write_text(text, encoding="utf-8")
    for argv in (
        ["validate", "-c", str(config)],
        ["plan", "-c", str(config)],
        ["rules", "test", "-c", str(config)],
    ):
        assert main(argv) == exitcodes.ERROR, argv
        err = capsys.readouterr().err
        _one_located_error(err, config, position)
        assert what in err


def test_validate_refuses_an_alias_loop_in_a_rule_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "mine.yaml").write_text("rules: &r\n  - *r\n", encoding="utf-8")
    assert main(["validate", "--rules", str(rules)]) == exitcodes.ERROR
    err = capsys.readouterr().err
    _one_located_error(err, rules / "mine.yaml", "2:5")


def test_rules_test_refuses_an_alias_loop_in_a_rule_test_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "loop.test.yaml"
    case.write_text("tests: &t\n  - {name: a, given: *t}\n", encoding="utf-8")
    assert main(["rules", "test", str(case)]) != exitcodes.OK
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    assert f"{case}:2:22" in out.err + out.out


def test_sandbox_refuses_a_billion_laughs_seed(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(LAUGHS, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from custsync.engine.cli import run; run()",
            "sandbox",
            "--port",
            "0",
            "--seed",
            str(seed),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == exitcodes.ERROR
    _one_located_error(result.stderr, seed, "5:10")


def test_the_business_central_doubles_seed_refuses_aliases_with_their_place(
    tmp_path: Path,
) -> None:
    from custsync.connectors.bc_double import SeedError, Store, load_seed_file

    seed = tmp_path / "bc-seed.yaml"
    seed.write_text(LAUGHS, encoding="utf-8")
    with pytest.raises(SeedError) as caught:
        load_seed_file(Store(), seed)
    assert str(caught.value).startswith(f"{seed}:5:10: YAML: aliases expand to more than")
    seed.write_text("companies: &c [{name: CRONUS, more: *c}]\n", encoding="utf-8")
    with pytest.raises(SeedError) as caught:
        load_seed_file(Store(), seed)
    assert str(caught.value).startswith(f"{seed}:1:37: YAML: alias *c is used inside")
