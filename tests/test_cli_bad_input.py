"""Bad input on the command line: a located one-line error, the README's exit code, never a
traceback (regressions found by using the CLI as a new user would)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.run.state import display_url, open_store

from sync_world import make_erp


def _config(
    folder: Path, *, state: str, shop_url: str = "http://127.0.0.1:9", **shopify: object
) -> Path:
    make_erp(f"sqlite:///{folder / 'erp.db'}")
    path = folder / "custsync.yaml"
    document = {
        "erp": {"url": "sqlite:///erp.db"},
        "state": {"url": state},
        "shops": [
            {
                "name": "main",
                "shopify": {"url": shop_url, "access_token_env": "CUSTSYNC_QA_TOKEN", **shopify},
                "schedule": {"import": "*/5 * * * *"},
            }
        ],
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _no_traceback(captured: pytest.CaptureResult[str]) -> str:
    assert "Traceback" not in captured.err + captured.out
    return captured.err


def test_a_state_database_in_a_missing_folder_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTSYNC_QA_TOKEN", "shpat_qa")
    config = _config(tmp_path, state="sqlite:///no-such-folder/state.db")
    capsys.readouterr()
    assert main(["sync", "-c", str(config), "--no-progress"]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    assert f"its folder {tmp_path / 'no-such-folder'} is missing" in err
    # `erp init` says the same instead of a traceback
    url = f"sqlite:///{tmp_path / 'nowhere' / 'erp.db'}"
    assert main(["erp", "init", "--erp", url]) == exitcodes.ERROR
    assert "is missing" in _no_traceback(capsys.readouterr())
    # an ERP database in a missing folder: `plan` said to run `erp init`, which cannot work
    # until the folder exists
    config.write_text(
        config.read_text(encoding="utf-8").replace("sqlite:///erp.db", "sqlite:///gone/erp.db"),
        encoding="utf-8",
    )
    assert main(["plan", "-c", str(config)]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    assert err == (
        f"custsync: error: ERP database file {tmp_path / 'gone' / 'erp.db'}: its folder "
        f"{tmp_path / 'gone'} is missing (create the folder, or correct the sqlite:/// URL)\n"
    )


def test_a_state_file_that_is_not_a_database_is_named_by_its_plain_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTSYNC_QA_TOKEN", "shpat_qa")
    (tmp_path / "state.db").write_text("not a database\n", encoding="utf-8")
    config = _config(tmp_path, state="sqlite:///state.db")
    capsys.readouterr()
    assert main(["sync", "-c", str(config), "--no-progress"]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    assert f"database sqlite:///{tmp_path / 'state.db'}: file is not a database" in err
    # read-only commands open the file as file:...?mode=ro; messages still show the plain URL
    assert main(["runs", "-c", str(config)]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    assert f"sqlite:///{tmp_path / 'state.db'}: file is not a database" in err
    assert "mode=ro" not in err and "file%3A" not in err


def test_runs_failures_of_an_unknown_run_names_the_configured_state_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, state="sqlite:///state.db")
    open_store(f"sqlite:///{tmp_path / 'state.db'}").close()
    capsys.readouterr()
    assert main(["runs", "-c", str(config), "--failures", "999"]) == exitcodes.USAGE
    err = _no_traceback(capsys.readouterr())
    assert f"no run 999 in the state database sqlite:///{tmp_path / 'state.db'}" in err


def test_display_url_hides_the_password_and_the_read_only_form() -> None:
    assert display_url("postgresql+psycopg://u:secret@db/x") == "postgresql+psycopg://u:***@db/x"
    assert display_url("sqlite:///file:/tmp/s.db?mode=ro&uri=true") == "sqlite:////tmp/s.db"


def test_a_closed_stdout_pipe_ends_quietly(tmp_path: Path) -> None:
    """`custsync rules list | head -0`: no BrokenPipeError traceback on stderr."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from custsync.engine.cli import run; run()", "rules", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader goes away before the output comes, like `head -0`
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) in (exitcodes.OK, exitcodes.ERROR)
    assert "Traceback" not in err and "BrokenPipeError" not in err


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections for the whole test: bound by the test and never
    listening, so no other process can take it meanwhile (a port found free and released
    could be taken by another test before the connection is tried)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_a_store_that_is_not_running_is_named_and_plan_keeps_the_configured_retries(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
) -> None:
    monkeypatch.setenv("CUSTSYNC_QA_TOKEN", "shpat_qa")
    url = f"http://127.0.0.1:{closed_port}"
    config = _config(
        tmp_path,
        state="sqlite:///state.db",
        shop_url=url,
        max_attempts=2,
        retry_base_delay_seconds=0.01,
        retry_max_delay_seconds=0.01,
    )
    capsys.readouterr()
    assert main(["plan", "-c", str(config)]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    # plan used to ignore max_attempts (6 tries, ~12 s) and did not say where it could not go
    assert f"giving up after 2 attempts: cannot connect to {url} (" in err
    assert "shpat_qa" not in err


def test_validate_reports_urls_that_only_failed_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plain http to a real host, an ERP scheme without a connector and a state URL that is
    not a database passed `validate` and failed only in `plan`/`sync`."""
    path = tmp_path / "custsync.yaml"
    path.write_text(
        "erp: {url: 'mysql://erp/db'}\n"
        "state: {url: 'ftp://files/state'}\n"
        "shops:\n"
        "  - name: main\n"
        "    shopify: {url: 'http://shop.example.com', access_token_env: T}\n"
        "  - name: sandbox\n"
        "    shopify: {url: 'http://localhost:8765', access_token_env: T}\n",
        encoding="utf-8",
    )
    assert main(["validate", "-c", str(path)]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    assert "custsync.yaml:1:12: error[url] /erp/url: no ERP connector for 'mysql:' URLs" in err
    assert "custsync.yaml:2:14: error[url] /state/url: the state store is a SQLite or" in err
    assert "/shops/0/shopify/url: plain http to shop.example.com would send the access" in err
    assert "/shops/1/" not in err  # the local sandbox is fine


@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["sync"],
        ["runs"],
        ["status"],
        ["schedule", "--once"],
        ["orders", "map", "--order", "1"],
        ["countries", "init"],
        ["rules", "list"],
        ["rules", "show", "match-by-email"],
        ["erp", "export"],
    ],
)
def test_a_missing_config_file_is_the_same_usage_error_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    missing = tmp_path / "missing.yaml"
    assert main([*command, "-c", str(missing)]) == exitcodes.USAGE
    err = _no_traceback(capsys.readouterr())
    assert err == f"custsync: error: {missing}: no such config file (pass -c FILE)\n"
    # a folder given as the config (`-c world`): `rules list` was an IsADirectoryError
    # traceback, the others said "no such config file" of a path that exists
    assert main([*command, "-c", str(tmp_path)]) == exitcodes.USAGE
    err = _no_traceback(capsys.readouterr())
    assert err == f"custsync: error: {tmp_path}: is a folder, not a config file (pass -c FILE)\n"


def test_erp_load_reports_value_problems_of_good_rows_next_to_malformed_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(url)
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(
        "no,name,country_code,phone,email\n"
        "C1,No Mail,US,,\n"  # fine for the ERP (export will skip it with a reason)
        "C2,Short Phone,US,12,a@example.com\n"
        "C3,Unknown Country,XX,,b@example.com\n"
        f"C4,{'N' * 500},US,,c@example.com\n"
        "C5,Too,Many,Values,Here,Really\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["erp", "load", str(csv_file), "--erp", url]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr()).splitlines()
    name = str(csv_file)
    assert err == [
        f"{name}:4: country_code: unknown country/region code 'XX'",
        f"{name}:5: name: too long (500 characters, max 100)",
        f"{name}:6: row has 6 values, the header has 5",
        f"{name}: 3 problems; nothing was loaded",
    ]
    assert main(["erp", "export", "--erp", url]) == exitcodes.OK
    assert capsys.readouterr().out.count("\n") == 1  # the header only: nothing was loaded


def test_orders_map_bad_ids_unknown_customers_and_empty_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    shopify_double: ShopifyDouble,
) -> None:
    monkeypatch.setenv("CUSTSYNC_QA_TOKEN", shopify_double.token)
    config = _config(tmp_path, state="sqlite:///state.db", shop_url=shopify_double.url)
    capsys.readouterr()
    # an id that is no order id is a usage error before anything is opened
    for bad in ("abc", "gid://shopify/Customer/1"):
        assert main(["orders", "map", "-c", str(config), "--order", bad]) == exitcodes.USAGE
        assert f"--order {bad}: not an order id" in _no_traceback(capsys.readouterr())
    # a customer the shop does not have: said so, not "the customer has no address"
    orders = tmp_path / "orders.yaml"
    orders.write_text(
        "orders:\n  - id: 5\n    name: '#5'\n    customer: 999999\n"
        "    bill_to: {first_name: A, last_name: B, address1: x, city: y, zip: '1',"
        " country_code: US}\n",
        encoding="utf-8",
    )
    args = ["orders", "map", "-c", str(config), "--file", str(orders), "--dry-run"]
    assert main([*args, "-o", "json"]) == exitcodes.ERROR
    result = json.loads(capsys.readouterr().out)
    assert result["problems"] == [
        "order #5: Shopify customer gid://shopify/Customer/999999 is not in the shop; "
        "mapped without a Shopify customer"
    ]
    assert "no address" not in result["orders"][0]["reason"]
    # plan --orders says the same as a warning
    assert main(["plan", "-c", str(config), "--orders", str(orders)]) == exitcodes.OK
    assert "Shopify customer gid://shopify/Customer/999999 is not in the shop" in (
        capsys.readouterr().out
    )
    # an empty file is said to be empty
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert main(["orders", "map", "-c", str(config), "--file", str(empty), "--dry-run"]) == 0
    assert f"{empty}: no orders to map" in _no_traceback(capsys.readouterr())


def test_paths_outside_the_working_folder_are_shown_so_that_they_can_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project_root: Path
) -> None:
    from custsync.engine.resources import shipped_rules_dir
    from custsync.engine.rules.validate import display_path

    monkeypatch.chdir(tmp_path)
    # a shipped rule file was shown as "rules/import_match.yaml", relative to the installed
    # package (issue 11): from here that does not open. Its real path does
    rule = shipped_rules_dir() / "import_match.yaml"
    assert display_path(rule) == str(rule.resolve()) and Path(display_path(rule)).is_file()
    # another file of the checkout was shown as "examples/world/...", which does not exist
    # from here either
    example = project_root / "examples" / "world" / "erp_customers.csv"
    assert display_path(example) == str(example)
    inside = tmp_path / "world" / "a.csv"
    assert display_path(inside) == "world/a.csv"


def test_a_setting_in_the_wrong_case_gets_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "custsync.yaml"
    path.write_text(
        "erp: {url: 'sqlite:///erp.db'}\n"
        "shops:\n"
        "  - name: main\n"
        "    shopify: {url: 'http://127.0.0.1:8765', access_token_env: T}\n"
        "    settings: {customer_import: NONE}\n",
        encoding="utf-8",
    )
    assert main(["validate", "-c", str(path)]) == exitcodes.ERROR
    assert (
        "'NONE' is not one of: none, with_order_import, all_customers (did you mean 'none'?)"
        in (_no_traceback(capsys.readouterr()))
    )


def test_sync_and_orders_refuse_a_files_world_without_creating_a_state_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project_root: Path
) -> None:
    """`custsync sync -c examples/custsync.yaml` used to create the example's state database
    (next to the config, in the checkout) before saying the files connector is read-only."""
    world = project_root / "examples" / "world"
    config = tmp_path / "custsync.yaml"
    config.write_text(
        f"erp: {{url: 'files:{world}'}}\n"
        "state: {url: 'sqlite:///state.db'}\n"
        f"shops:\n  - name: main\n    shopify: {{url: 'files:{world}'}}\n",
        encoding="utf-8",
    )
    orders = world / "orders.yaml"
    for command in (["sync", "--no-progress"], ["orders", "map", "--file", str(orders)]):
        assert main([*command, "-c", str(config)]) == exitcodes.ERROR
        assert "the files connector is read-only" in _no_traceback(capsys.readouterr())
        assert not (tmp_path / "state.db").exists()


def test_sync_with_a_missing_token_creates_no_state_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUSTSYNC_QA_TOKEN", raising=False)
    config = _config(tmp_path, state="sqlite:///state.db")
    capsys.readouterr()
    assert main(["sync", "-c", str(config), "--no-progress"]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    assert "environment variable CUSTSYNC_QA_TOKEN is not set or empty" in err
    assert not (tmp_path / "state.db").exists()


def test_erp_load_of_a_semicolon_file_suggests_the_delimiter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(url)
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("no;city\nC1;Oakland\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["erp", "load", str(csv_file), "--erp", url]) == exitcodes.ERROR
    expected = (
        f"{csv_file}:1: no;city: unknown column for customers; the file seems separated by "
        "';': use --delimiter ';'"
    )
    assert expected in _no_traceback(capsys.readouterr())
    assert main(["erp", "load", str(csv_file), "--erp", url, "--delimiter", ";"]) == exitcodes.OK


def test_a_users_own_rules_folder_does_not_shadow_shipped_rule_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a folder with its own rules/import_match.yaml, `rules show` printed the shipped
    rule as rules/import_match.yaml:19 and read the user's file there (no when/then)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "import_match.yaml").write_text(
        "decision: import_match\nrules:\n  - id: mine\n    then: {action: no_match}\n",
        encoding="utf-8",
    )
    assert main(["rules", "show", "match-by-email"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "file:        rules/import_match.yaml" not in out
    assert "import_match.yaml:" in out and "lookup.email_customer_no:" in out


def test_rules_commands_refuse_a_rules_key_that_is_not_a_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules: ./my-rules` (not a list) made `rules list -c` quietly list the shipped rules
    only, as if the user's folder had no rules."""
    path = tmp_path / "custsync.yaml"
    path.write_text("erp: {url: 'sqlite:///erp.db'}\nrules: ./my-rules\n", encoding="utf-8")
    assert main(["rules", "list", "-c", str(path)]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    assert err == (
        f"custsync: error: {path}:2:8: /rules: expected a list of rule folders "
        "(e.g. rules: [./my-rules]), got str\n"
    )


def test_sandbox_and_demo_options_are_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # out-of-range options are usage errors (64), as the sandbox docs say, not exit 1
    assert main(["sandbox", "--port", "70000"]) == exitcodes.USAGE
    assert "--port 70000: must be between 0 and 65535" in _no_traceback(capsys.readouterr())
    # a --persist file in a missing folder was found out only at Ctrl-C: the store was lost
    persist = tmp_path / "missing" / "store.json"
    assert main(["sandbox", "--port", "0", "--persist", str(persist)]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    assert err == (
        f"custsync: error: --persist {persist}: its folder {persist.parent} does not exist\n"
    )
    # `demo --customers -5` ran the whole demo without customers
    with pytest.raises(SystemExit) as raised:
        main(["demo", "--customers", "-5", "--dir", str(tmp_path / "demo")])
    assert raised.value.code == exitcodes.USAGE
    assert "argument --customers: must be 1 or more: '-5'" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
    # `demo --dir FILE` was a FileExistsError traceback
    existing = tmp_path / "a-file"
    existing.write_text("", encoding="utf-8")
    assert main(["demo", "--dir", str(existing)]) == exitcodes.USAGE
    err = _no_traceback(capsys.readouterr())
    assert err == f"custsync: error: --dir {existing}: is a file, not a folder\n"


def test_rules_folder_options_say_what_is_wrong_with_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing, a_file = tmp_path / "missing", tmp_path / "rules.yaml"
    a_file.write_text("decision: import_match\nrules: []\n", encoding="utf-8")
    assert main(["rules", "list", "--rules", str(missing)]) == exitcodes.USAGE
    assert f"--rules {missing}: no such folder" in _no_traceback(capsys.readouterr())
    # a rule file given where a folder is expected was "no such folder" too
    assert main(["rules", "list", "--rules", str(a_file)]) == exitcodes.USAGE
    assert f"--rules {a_file}: is a file, not a folder" in _no_traceback(capsys.readouterr())


def test_a_database_url_whose_port_is_no_number_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`erp init --erp postgresql://u:pw@db:abc/erp` was a ValueError traceback."""
    url = "postgresql+psycopg://u:s3cret@db:abc/erp"
    assert main(["erp", "init", "--erp", url]) == exitcodes.ERROR
    err = _no_traceback(capsys.readouterr())
    assert err == (
        "custsync: error: invalid database URL: its port is not a number "
        "(examples: sqlite:///erp.db, postgresql+psycopg://user@host:5432/db)\n"
    )
    assert display_url(url) == "<invalid database URL>"
