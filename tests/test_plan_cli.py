"""`custsync plan`: options, exit codes, files worlds, and that a dry run never writes."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import order_record, seed_from_models
from custsync.engine import exitcodes, registry
from custsync.engine.cli import main
from custsync.engine.config import DEFAULT_OVERLAP_SECONDS
from custsync.engine.model import ErpCustomer, Link, ShopifyAddress, ShopifyCustomer
from custsync.engine.run.plan import plan_from_json
from custsync.engine.run.state import SqlStateStore

from plan_helpers import ROOT, schema_errors
from sync_world import IMPORT_SETTINGS, make_erp, write_config

EXAMPLE_CONFIG = ROOT / "examples" / "custsync.yaml"
EXAMPLE_WORLD = ROOT / "examples" / "world"

Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _no_writers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run must never construct a writing client."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("plan constructed a writer")

    monkeypatch.setattr(registry, "open_erp_writer", refuse)
    monkeypatch.setattr(registry, "open_shopify_writer", refuse)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _plan(*args: str) -> int:
    return main(["plan", *args])


# --------------------------------------------------------------------------------------------
# The example world
# --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("in_root")
def test_detailed_exitcode_reports_changes(capsys: Capture) -> None:
    assert _plan("--config", str(EXAMPLE_CONFIG)) == exitcodes.OK
    assert (
        _plan("--config", str(EXAMPLE_CONFIG), "--detailed-exitcode") == exitcodes.CHANGES_PRESENT
    )
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].startswith("Plan: ")


@pytest.mark.usefixtures("in_root")
def test_json_out_without_fork_writes_the_same_file(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o json --out` writes through a second process where the platform can fork, and
    through the in-process spool where it cannot: the same document."""
    from custsync.engine.run.planpipe import SpoolProcess

    forked, in_process = tmp_path / "forked.json", tmp_path / "in-process.json"
    assert _plan("--config", str(EXAMPLE_CONFIG), "-o", "json", "--out", str(forked)) == 0
    monkeypatch.setattr(SpoolProcess, "available", staticmethod(lambda: False))

    def refuse(*_: object) -> None:
        raise AssertionError("no second process where the platform cannot fork")

    monkeypatch.setattr(SpoolProcess, "__init__", refuse)
    assert _plan("--config", str(EXAMPLE_CONFIG), "-o", "json", "--out", str(in_process)) == 0
    capsys.readouterr()
    created = re.compile(rb'"created_at": "[^"]*"')
    assert created.sub(b"", forked.read_bytes()) == created.sub(b"", in_process.read_bytes())


@pytest.mark.usefixtures("in_root")
def test_json_output_validates_and_out_file_round_trips(tmp_path: Path, capsys: Capture) -> None:
    out_file = tmp_path / "saved" / "plan.json"
    code = _plan("--config", str(EXAMPLE_CONFIG), "-o", "json", "--out", str(out_file))
    assert code == exitcodes.OK
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert schema_errors(data) == []
    assert f"custsync sync --plan {out_file}" in captured.err
    saved = json.loads(out_file.read_text(encoding="utf-8"))
    assert saved == data
    plan = plan_from_json(out_file.read_text(encoding="utf-8"))
    assert plan.summary.counts == {k: data["summary"][k] for k in plan.summary.counts}
    assert set(data["fingerprints"]) >= {
        "erp",
        "erp_reference",
        "shopify:main",
        "links:main",
        "rules",
        "config",
    }
    # contact data is complete in JSON, masked in text
    assert "hans.mueller@example.de" in captured.out
    assert _plan("--config", str(EXAMPLE_CONFIG)) == exitcodes.OK
    assert "hans.mueller@example.de" not in capsys.readouterr().out


@pytest.mark.usefixtures("in_root")
def test_direction_and_bad_records(capsys: Capture) -> None:
    assert _plan("--config", str(EXAMPLE_CONFIG), "--direction", "export", "-o", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["directions"] == ["export"]
    assert {d["direction"] for d in data["decisions"]} == {"export"}
    bad = next(d for d in data["decisions"] if d["record"] == "C00130")
    assert bad["action"] == "skip" and bad["reason_code"] == "bad-record"
    assert bad["message"].startswith("examples/world/erp_customers.csv:14: field 'modified_at'")
    assert _plan("--config", str(EXAMPLE_CONFIG), "--direction", "import", "-o", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["direction"] for d in data["decisions"]} == {"import"}
    assert any(d["record"] == "gid://shopify/Customer/1009" for d in data["decisions"])


@pytest.mark.usefixtures("in_root")
def test_orders_by_id_and_from_a_file(capsys: Capture) -> None:
    code = _plan("--config", str(EXAMPLE_CONFIG), "--order", "7001", "--order", "404", "-o", "json")
    assert code == exitcodes.OK
    data = json.loads(capsys.readouterr().out)
    assert data["directions"] == ["order"]
    [decision] = data["decisions"]
    assert decision["record"] == "gid://shopify/Order/7001" and decision["direction"] == "order"
    codes = [w["code"] for w in data["warnings"]]
    assert codes[0] == "order-not-found"
    # bad customer records are warnings when their direction is not planned
    assert codes[1:] == ["bad-record", "bad-record"]
    orders = str(EXAMPLE_WORLD / "orders.yaml")
    assert _plan("--config", str(EXAMPLE_CONFIG), "--orders", orders, "-o", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["record"] for d in data["decisions"]] == [
        "gid://shopify/Order/7001",
        "gid://shopify/Order/7002",
        "gid://shopify/Order/7003",
    ]


# --------------------------------------------------------------------------------------------
# Files worlds without a config, and problems
# --------------------------------------------------------------------------------------------


def test_bare_world_uses_default_settings(in_tmp: Path, capsys: Capture) -> None:
    assert _plan("--world", str(EXAMPLE_WORLD), "-o", "json", "--detailed-exitcode") in (0, 2)
    data = json.loads(capsys.readouterr().out)
    assert data["shops"] == ["main"]
    assert data["warnings"][0]["code"] == "no-config"
    # with_order_import (the default) imports nobody new: nothing is created
    assert data["summary"]["create"] == 0


def test_a_world_without_changes_exits_zero_with_detailed_exitcode(
    in_tmp: Path, capsys: Capture
) -> None:
    world = in_tmp / "world"
    world.mkdir()
    (world / "shopify_customers.yaml").write_text("- {id: 1, first_name: Pos}\n", encoding="utf-8")
    assert _plan("--world", str(world), "--detailed-exitcode") == exitcodes.OK
    out = capsys.readouterr().out
    assert "Plan:" in out or "No changes." in out


def test_bad_input_files_are_errors_with_positions(in_tmp: Path, capsys: Capture) -> None:
    world = in_tmp / "world"
    world.mkdir()
    (world / "erp_customers.csv").write_bytes(b"no,name\nC1,M\xfcller\n")
    assert _plan("--world", str(world)) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert "world/erp_customers.csv:2:5: not UTF-8 (byte 0xfc)" in err
    assert "Traceback" not in err


def test_usage_errors(in_tmp: Path, capsys: Capture) -> None:
    assert _plan() == exitcodes.USAGE
    assert "no configuration: pass --config FILE" in capsys.readouterr().err
    assert _plan("--config", "missing.yaml") == exitcodes.USAGE
    assert _plan("--config", str(EXAMPLE_CONFIG), "--shop", "nope") == exitcodes.USAGE
    assert "--shop nope: no such shop; configured: main" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        _plan("--world", ".", "--order", "1", "--orders", "x.yaml")
    assert exc.value.code == exitcodes.USAGE
    with pytest.raises(SystemExit) as exc:
        _plan("--world", ".", "--direction", "sideways")
    assert exc.value.code == exitcodes.USAGE


def test_invalid_rules_and_config_print_diagnostics_and_exit_1(
    in_tmp: Path, capsys: Capture
) -> None:
    rules = in_tmp / "my-rules"
    rules.mkdir()
    (rules / "bad.yaml").write_text(
        "decision: import_match\nrules:\n  - id: x\n    then: {action: explode}\n", encoding="utf-8"
    )
    assert _plan("--world", str(EXAMPLE_WORLD), "--rules", str(rules)) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert "my-rules/bad.yaml:" in err and "error[" in err
    config = in_tmp / "custsync.yaml"
    config.write_text("erp: {url: 'files:./world'}\nshops: [{name: main}]\n", encoding="utf-8")
    assert _plan("--config", str(config)) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert "custsync.yaml:" in err and "error[" in err


def test_out_file_that_cannot_be_written(in_root: None, tmp_path: Path, capsys: Capture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    code = _plan("--config", str(EXAMPLE_CONFIG), "--out", str(blocker / "plan.json"))
    assert code == exitcodes.ERROR
    assert "--out" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Against real connectors: SQLite ERP, the Shopify double, the state store
# --------------------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plan_against_connectors_reads_state_and_writes_nothing(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: Capture
) -> None:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(erp_url, [ErpCustomer(no="C00001", name="Jane Doe", email="jane@example.com")])
    address = ShopifyAddress(
        first_name="Max", address1="1 Main St", city="Austin", zip="73301", country_code="US"
    )
    old, new = seed_from_models(
        shopify_double,
        [
            ShopifyCustomer(
                id="", first_name="Jane", email="JANE@example.com", addresses=(address,)
            ),
            ShopifyCustomer(id="", first_name="Max", email="max@example.com", addresses=(address,)),
        ],
    )
    config = write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=state_url,
        settings=IMPORT_SETTINGS,
        token=shopify_double.token,
    )

    # no state database yet: a first run, both customers planned, nothing written
    assert _plan("--config", str(config), "--direction", "import", "-o", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["record"] for d in data["decisions"]} == {old, new}
    assert "no-state" in [w["code"] for w in data["warnings"]]
    assert not (tmp_path / "state.db").exists()

    store = SqlStateStore.open(state_url)
    store.save_link(Link(shop="main", shopify_id=old, erp_no="C00001"))
    # a cursor in a later second than both updates plus the read overlap (customers updated
    # in the cursor's own second, or sync.overlap_seconds before it, are read again on purpose)
    store.advance_cursor(
        "main", "import", datetime.now(UTC) + timedelta(seconds=2 + DEFAULT_OVERLAP_SECONDS)
    )
    store.close()
    erp_before, state_before = _digest(tmp_path / "erp.db"), _digest(tmp_path / "state.db")
    shopify_double.reset_log()

    # with a cursor after both updates, nothing is selected for import
    assert _plan("--config", str(config), "--direction", "import", "-o", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decisions"] == []
    assert shopify_double.mutation_count() == 0
    assert _digest(tmp_path / "erp.db") == erp_before
    assert _digest(tmp_path / "state.db") == state_before
    assert "shpat" not in json.dumps(data)  # no token anywhere


def test_orders_by_number_or_gid_from_the_store(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: Capture
) -> None:
    """`plan --order 5001` against a store: the number is sent as an Order gid (Shopify
    answered "Invalid global id '5001'", exit 1); an id that is none is a usage error read
    before anything is opened."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url, [ErpCustomer(no="C00001", name="Default Customer", country_code="NL")])
    shopify_double.store.load([], [order_record({"id": "gid://shopify/Order/5001", "name": "#5001"})])
    config = write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        settings={"default_customer_no": "C00001"},
        token=shopify_double.token,
    )
    for order in ("5001", "gid://shopify/Order/5001"):
        assert _plan("--config", str(config), "--order", order, "-o", "json") == exitcodes.OK
        data = json.loads(capsys.readouterr().out)
        [decision] = data["decisions"]
        assert decision["record"] == "gid://shopify/Order/5001"
        assert decision["action"] == "link" and decision["erp_no"] == "C00001"
    assert _plan("--config", str(config), "--order", "5002", "-o", "json") == exitcodes.OK
    assert [w["code"] for w in json.loads(capsys.readouterr().out)["warnings"]] == [
        "no-state",
        "order-not-found",
    ]
    shopify_double.reset_log()
    assert _plan("--config", str(config), "--order", "5001", "--order", "abc") == exitcodes.USAGE
    assert "--order abc: not an order id" in capsys.readouterr().err
    assert shopify_double.requests == []


def test_files_world_copied_elsewhere_plans_the_same(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(EXAMPLE_WORLD, tmp_path / "world")
    shutil.copy(EXAMPLE_CONFIG, tmp_path / "custsync.yaml")
    monkeypatch.chdir(tmp_path)
    assert _plan("-o", "json") == 0  # ./custsync.yaml is the default config
    copied = json.loads(capsys.readouterr().out)
    monkeypatch.chdir(ROOT)
    assert _plan("--config", str(EXAMPLE_CONFIG), "-o", "json") == 0
    original = json.loads(capsys.readouterr().out)
    assert copied["summary"] == original["summary"]
    assert copied["fingerprints"] == original["fingerprints"]


def test_a_large_json_plan_is_written_once_and_stdout_gets_the_same_bytes(
    tmp_path: Path,
) -> None:
    """Above PRETTY_DECISIONS the decisions are copied into the file from the spool whole and
    the file is copied to stdout (a regular file here, as in `plan -o json --out F > G`)."""
    import subprocess
    import sys

    from custsync.engine.run.plan import PRETTY_DECISIONS

    world = tmp_path / "world"
    world.mkdir()
    count = PRETTY_DECISIONS + 20
    with (world / "erp_customers.jsonl").open("w", encoding="utf-8") as rows:
        for i in range(count):
            row = {"no": f"C{i:05d}", "name": f"Kunde {i}", "city": "Köln", "country_code": "DE",
                   "address": "Domplatz 1", "post_code": "50667", "email": f"k{i}@example.de"}
            rows.write(json.dumps(row, ensure_ascii=False) + "\n")
    out_file = tmp_path / "plan.json"
    stdout_file = tmp_path / "stdout.json"
    with stdout_file.open("wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-c", "from custsync.engine.cli import run; run()", "plan",
             "--world", str(world), "--direction", "export", "-o", "json", "--out",
             str(out_file)],
            stdout=stdout, stderr=subprocess.PIPE, cwd=tmp_path, check=False, timeout=600,
        )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    saved = out_file.read_bytes()
    assert stdout_file.read_bytes() == saved
    assert out_file.stat().st_mode & 0o777 == 0o600
    data = json.loads(saved)
    assert [d["record"] for d in data["decisions"]] == [f"C{i:05d}" for i in range(count)]
    assert data["summary"]["create"] + data["summary"]["skip"] == count
    lines = saved.decode("utf-8").splitlines()
    start = lines.index('  "decisions": [')
    assert lines[start + 1].startswith('    {"direction": "export"')
    assert lines[start + count].endswith("}") and lines[start + count + 1] == "  ],"


def _world_with_a_lone_surrogate(tmp_path: Path, count: int) -> Path:
    """A files world of ``count`` ERP customers, the first named with a lone UTF-16 surrogate
    (``"\\ud800"`` in its JSON line: valid JSON, but no UTF-8 output can carry it as it is)."""
    world = tmp_path / "world"
    world.mkdir()
    with (world / "erp_customers.jsonl").open("w", encoding="utf-8") as rows:
        for i in range(count):
            name = "Kunde \\ud800 0" if i == 0 else f"Kunde {i}"
            rows.write(
                f'{{"no": "C{i:05d}", "name": "{name}", "city": "Bonn", "country_code": "DE", '
                f'"address": "Markt 1", "post_code": "53111", "email": "k{i}@example.de"}}\n'
            )
    return world


def test_a_lone_surrogate_in_a_source_is_escaped_in_every_plan_output(
    tmp_path: Path, capsys: Capture
) -> None:
    """The text plan shows it escaped (like a control character), the JSON plan carries it as
    its JSON escape, which reads back as the same value; before, the output stopped with a
    UnicodeEncodeError."""
    world = _world_with_a_lone_surrogate(tmp_path, 3)
    assert _plan("--world", str(world), "--direction", "export") in (0, 2)
    text = capsys.readouterr().out
    assert "Kunde \\ud800 0" in text
    assert _plan("--world", str(world), "--direction", "export", "-o", "json") in (0, 2)
    raw = capsys.readouterr().out
    raw.encode("utf-8")  # encodable as it is
    (first,) = [d for d in json.loads(raw)["decisions"] if d["record"] == "C00000"]
    assert "\ud800" in first["label"]


def test_a_lone_surrogate_in_a_large_plan_file_is_escaped_too(tmp_path: Path) -> None:
    """The one-decision-a-line layout (decisions spooled, the file written by a second
    process) escapes it the same way: the file is UTF-8 and reads back as the same value."""
    import subprocess
    import sys

    from custsync.engine.run.plan import PRETTY_DECISIONS

    world = _world_with_a_lone_surrogate(tmp_path, PRETTY_DECISIONS + 5)
    out_file = tmp_path / "plan.json"
    done = subprocess.run(
        [sys.executable, "-c", "from custsync.engine.cli import run; run()", "plan",
         "--world", str(world), "--direction", "export", "-o", "json", "--out", str(out_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path, check=False,
        timeout=600,
    )
    assert done.returncode in (0, 2), done.stderr.decode()[-2000:]
    saved = out_file.read_bytes().decode("utf-8")  # strict: no surrogate written through
    (first,) = [d for d in json.loads(saved)["decisions"] if d["record"] == "C00000"]
    assert "\ud800" in first["label"]
