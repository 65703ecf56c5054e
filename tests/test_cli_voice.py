"""One voice across the CLI (issue 11, item 5): every command says the same thing the same way."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import build_parser, main
from custsync.engine.run.state import SqlStateStore

CONFIG = """\
erp: {url: "sqlite:///erp.db"}
state: {url: "sqlite:///state.db"}
shops:
  - name: main
    shopify: {url: "http://127.0.0.1:9"}
    schedule: {import: "*/15 * * * *"}
  - name: outlet
    shopify: {url: "http://127.0.0.1:9"}
"""


def _subcommands() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every command and subcommand of ``custsync`` (``plan``, ``erp load``, ...) -> parser."""
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[(*path, name)] = sub
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return found


SUBCOMMANDS = _subcommands()
EXAMPLE_WORLD = Path(__file__).resolve().parent.parent / "examples" / "world"

#: each command taking --shop, with the other arguments it needs to get as far as the check
SHOP_COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("plan",): (),
    ("sync",): (),
    ("runs",): (),
    ("status",): (),
    ("schedule",): ("--once",),
    ("orders", "map"): ("--order", "1", "--dry-run"),
    ("countries", "init"): ("--from-iso", "--country", "US", "--dry-run"),
    ("webhooks", "register"): ("--url", "https://sync.example.com/webhooks/shopify"),
    ("webhooks", "list"): (),
    ("attention", "list"): (),
    ("attention", "show"): ("C00001",),
    ("attention", "retry"): ("C00001",),
    ("attention", "resolve"): ("C00001",),
    ("attention", "unlink"): ("1001",),
}


@pytest.fixture
def configured(tmp_path: Path) -> Path:
    """A config of shops main and outlet, and a state database with one run of main."""
    config = tmp_path / "custsync.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    store = SqlStateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        run = store.start_run("main", "import", datetime.now(UTC))
        store.finish_run(run, "succeeded", {"created": 1})
    finally:
        store.close()
    return config


def test_every_command_taking_shop_is_checked() -> None:
    takes_shop = {
        path
        for path, parser in SUBCOMMANDS.items()
        if any("--shop" in a.option_strings for a in parser._actions)
    }
    assert takes_shop == set(SHOP_COMMANDS)


@pytest.mark.parametrize("command", list(SHOP_COMMANDS), ids=" ".join)
def test_an_unknown_shop_is_a_usage_error_everywhere(
    command: tuple[str, ...], configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status`, `schedule` and `countries init` exited 1, `runs` 0 with "No runs."."""
    code = main([*command, "-c", str(configured), "--shop", "mian", *SHOP_COMMANDS[command]])
    out, err = capsys.readouterr()
    assert code == exitcodes.USAGE, err
    assert "No runs." not in out
    assert (
        "custsync: error: --shop mian: no such shop (did you mean 'main'?); "
        "configured: main, outlet\n"
    ) in err


def test_runs_of_a_shop_only_in_the_run_log_are_shown(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shop removed from the config keeps its history."""
    configured.write_text(CONFIG.replace("name: main", "name: renamed"), encoding="utf-8")
    assert main(["runs", "-c", str(configured), "--shop", "main"]) == exitcodes.OK
    assert "main" in capsys.readouterr().out
    assert main(["runs", "-c", str(configured), "--shop", "outlet"]) == exitcodes.OK
    assert capsys.readouterr().out == "No runs.\n"
    state = f"sqlite:///{configured.parent / 'state.db'}"
    missing = str(configured.parent / "missing.yaml")
    assert main(["runs", "-c", missing, "--state", state, "--shop", "nope"]) == exitcodes.USAGE
    assert "--shop nope: no such shop; configured: main\n" in capsys.readouterr().err


#: the metavars of the CLI: one word per kind of value
METAVARS = {
    "FILE", "DIR", "PATH", "URL", "N", "SHOP", "SECONDS", "TEXT", "CODE", "TIME", "ID",
    "RUN_ID", "PORT", "TOKEN", "VERSION", "NAME", "CHAR", "SPEC", "QUEUES", "HOST",
}  # fmt: skip
#: options that mean different things in different commands (a demo's seed is a number, the
#: sandbox's a file)
HOMONYMS = {"--seed"}


def _options() -> list[tuple[tuple[str, ...], argparse.Action]]:
    return [
        (path, action)
        for path, parser in SUBCOMMANDS.items()
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
    ]


def _name(path: tuple[str, ...], action: argparse.Action) -> str:
    return f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}"


def _stated_default(action: argparse.Action) -> str | None:
    """The default an option has (as its help should state it), None when it has none."""
    default = action.default
    if default is None or default is False or default == [] or action.nargs == 0:
        return None
    return f"{default:g}" if isinstance(default, float) else str(default)


@pytest.mark.parametrize(
    ("path", "action"),
    [pytest.param(path, action, id=_name(path, action)) for path, action in _options()],
)
def test_every_option_has_help_a_known_metavar_and_its_default(
    path: tuple[str, ...], action: argparse.Action
) -> None:
    """`sync -o` had no help text, `sync --rules RULES` and `--plan PLAN_FILE` made-up metavars,
    `demo --seed` and `erp init --number-width` did not say their default."""
    name = _name(path, action)
    assert action.help and action.help.strip(), f"{name}: no help text"
    if action.nargs != 0 and not action.choices:
        assert action.metavar in METAVARS, f"{name}: metavar {action.metavar!r}"
    default = _stated_default(action)
    if default is not None:
        stated = rf"[(;] ?default: (\./)?{re.escape(default)}(?![\w-])"
        assert re.search(stated, action.help), f"{name}: {action.help!r} hides its default {default!r}"


def test_one_option_one_metavar_across_commands() -> None:
    seen: dict[str, set[str]] = {}
    for _path, action in _options():
        if action.nargs == 0 or action.choices:
            continue
        for option in action.option_strings:
            if option not in HOMONYMS:
                seen.setdefault(option, set()).add(str(action.metavar))
    assert {option: metavars for option, metavars in seen.items() if len(metavars) > 1} == {}
    assert seen["--shop"] == {"SHOP"} and seen["--config"] == {"FILE"}


def test_files_with_full_contact_data_are_owner_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`erp export --out` wrote 0644 (the umask's) where `plan --out` wrote 0600; the demo's
    plan.json is checked in test_demo_cli. All go through engine/files.py."""
    from custsync.connectors.shopify_double.seed import save_store
    from custsync.connectors.shopify_double.store import Store

    erp = f"sqlite:///{tmp_path / 'erp.db'}"
    export = tmp_path / "customers.csv"
    export.write_text("old\n", encoding="utf-8")
    export.chmod(0o644)
    saved = tmp_path / "out" / "plan.json"
    persisted = tmp_path / "store.json"
    umask = os.umask(0o022)  # the usual umask: new files 0644 unless made private
    try:
        assert main(["erp", "init", "--erp", erp]) == exitcodes.OK
        assert main(["erp", "export", "--erp", erp, "--out", str(export)]) == exitcodes.OK
        assert main(["plan", "--world", str(EXAMPLE_WORLD), "--out", str(saved)]) == exitcodes.OK
        save_store(Store(), persisted)
    finally:
        os.umask(umask)
    capsys.readouterr()
    for path in (export, saved, persisted):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert export.read_text(encoding="utf-8").startswith("no,")  # replaced, not appended to
    assert [p.name for p in tmp_path.glob(".*")] == []  # no temporary file left behind


def test_orders_map_dry_run_on_a_files_world(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "the files connector is read-only": a dry run needs no writer, and decides as
    `plan --orders` does (links from the world's links file), creating no state database."""
    world = tmp_path / "world"
    shutil.copytree(EXAMPLE_WORLD, world)
    config = tmp_path / "custsync.yaml"
    shutil.copy(EXAMPLE_WORLD.parent / "custsync.yaml", config)
    orders = str(world / "orders.yaml")

    code = main(["orders", "map", "-c", str(config), "--file", orders, "--dry-run", "-o", "json"])
    out, err = capsys.readouterr()
    assert code == exitcodes.OK, err
    mapped = {row["order"]: (row["customer"], row["status"]) for row in json.loads(out)["orders"]}
    assert mapped == {
        "gid://shopify/Order/7001": ("C00010", "planned"),  # by the link in links.csv
        "gid://shopify/Order/7002": ("", "planned"),  # a new customer
        "gid://shopify/Order/7003": ("C00010", "planned"),  # the shop's default customer
    }
    assert main(["plan", "-c", str(config), "--orders", orders, "-o", "json"]) == exitcodes.OK
    planned = json.loads(capsys.readouterr().out)["decisions"]
    assert {d["record"]: d["payload"].get("sell_to", "") for d in planned} == {
        order: customer for order, (customer, _) in mapped.items()
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["custsync.yaml", "world"]

    # applying still needs writers: the read-only world says so
    assert main(["orders", "map", "-c", str(config), "--file", orders]) == exitcodes.ERROR
    assert "read-only" in capsys.readouterr().err
