"""`custsync erp init | load | export` against real databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from custsync.connectors.erp_sql import open_reader
from custsync.engine import exitcodes
from custsync.engine.cli import main

HEADER = "no,name,email,country_code,tax_liable,customer_posting_group"


@pytest.fixture
def erp_url(db_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["erp", "init", "--erp", db_url, "--with-defaults"]) == exitcodes.OK
    assert "ready" in capsys.readouterr().out
    return db_url


def _write(tmp_path: Path, text: str | bytes, name: str = "customers.csv") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def _nos(url: str) -> list[str]:
    with open_reader(url) as reader:
        return [c.no for c in reader.iter_customers()]


def test_init_twice_is_fine(erp_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["erp", "init", "--erp", erp_url]) == exitcodes.OK
    assert "0 countries added" in capsys.readouterr().out


def test_load_then_export_round_trip(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = _write(
        tmp_path,
        f"{HEADER}\nC00010,Jane Doe,jane@example.com,US,yes,RETAIL\n,Nikos,nikos@example.gr,EL,,\n",
    )
    assert main(["erp", "load", csv_file, "--erp", erp_url]) == exitcodes.OK
    assert "loaded 2 customers (2 new, 0 updated)" in capsys.readouterr().out
    assert _nos(erp_url) == ["C00001", "C00010"]

    out = tmp_path / "out.csv"
    assert main(["erp", "export", "--erp", erp_url, "--out", str(out)]) == exitcodes.OK
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("no,name,name_2,contact,address")
    assert lines[2].startswith("C00010,Jane Doe,")
    assert ",true," in lines[2]

    assert main(["erp", "export", "--erp", erp_url, "-o", "jsonl"]) == exitcodes.OK
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["no"] for r in records] == ["C00001", "C00010"]
    assert records[1]["tax_liable"] is True and records[1]["etag"] == "1"
    assert records[1]["modified_at"].endswith("+00:00")

    # the exported CSV loads back as an update
    assert main(["erp", "load", str(out), "--erp", erp_url, "--update"]) == exitcodes.OK
    assert "(0 new, 2 updated)" in capsys.readouterr().out


def test_every_bad_row_is_reported_and_nothing_is_loaded(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [HEADER] + [f"C{i:05d},Name {i},n{i}@example.com,US,no," for i in range(1, 16)]
    rows.append(f"C00016,Ok,{'a' * 75}@example.com,US,no,")  # line 17: e-mail too long
    rows.append("C00017,Bad,x@example.com,XX,maybe,")  # line 18: two problems
    rows.append("C00001,Again,again@example.com,US,no,")  # line 19: duplicate of line 2
    rows.append("C00018,short")  # line 20: wrong number of values
    csv_file = _write(tmp_path, "\n".join(rows) + "\n")
    assert main(["erp", "load", csv_file, "--erp", erp_url]) == exitcodes.ERROR
    err = capsys.readouterr().err.splitlines()
    name = csv_file
    # one run reports the malformed row and the value problems of the others
    assert err == [
        f"{name}:17: email: too long (87 characters, max 80)",
        f"{name}:18: tax_liable: not a boolean (use true/false, yes/no or 1/0)",
        f"{name}:18: country_code: unknown country/region code 'XX'",
        f"{name}:19: no: customer C00001 is also on line 2",
        f"{name}:20: row has 2 values, the header has 6",
        f"{name}: 5 problems; nothing was loaded",
    ]
    assert _nos(erp_url) == []
    # fix the structure: the value problems are all reported, with line and column
    csv_file = _write(tmp_path, "\n".join(rows[:-1]) + "\n")
    assert main(["erp", "load", csv_file, "--erp", erp_url]) == exitcodes.ERROR
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{name}:17: email: too long (87 characters, max 80)",
        f"{name}:18: tax_liable: not a boolean (use true/false, yes/no or 1/0)",
        f"{name}:18: country_code: unknown country/region code 'XX'",
        f"{name}:19: no: customer C00001 is also on line 2",
        f"{name}: 4 problems; nothing was loaded",
    ]
    assert _nos(erp_url) == []


def test_existing_numbers_need_update(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _write(tmp_path, "no,name,city\nC00001,Jane,Paris\n")
    assert main(["erp", "load", first, "--erp", erp_url]) == exitcodes.OK
    second = _write(tmp_path, "no,city\nC00001,Lyon\n", "second.csv")
    assert main(["erp", "load", second, "--erp", erp_url]) == exitcodes.ERROR
    assert "second.csv:2: no: customer C00001 already exists (use --update" in (
        capsys.readouterr().err
    )
    assert main(["erp", "load", second, "--erp", erp_url, "--update"]) == exitcodes.OK
    with open_reader(erp_url) as reader:
        customer = reader.get_customer("C00001")
    assert customer is not None and (customer.name, customer.city) == ("Jane", "Lyon")
    assert customer.etag == "2"


def test_non_utf8_file_reports_line_and_byte_offset(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = _write(tmp_path, b"no,name\nC00001,Jane\nC00002,Ren\xe9e\n")
    assert main(["erp", "load", csv_file, "--erp", erp_url]) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert f"{csv_file}:3: not UTF-8 (byte 0xe9 at byte offset 30)" in err
    assert _nos(erp_url) == []


def test_header_problems(erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = _write(tmp_path, "no,colour,name,name\nC1,red,a,b\n")
    assert main(["erp", "load", csv_file, "--erp", erp_url]) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert f"{csv_file}:1: colour: unknown column for customers" in err
    assert f"{csv_file}:1: name: column appears twice in the header" in err
    empty = _write(tmp_path, "", "empty.csv")
    assert main(["erp", "load", empty, "--erp", erp_url]) == exitcodes.ERROR
    assert "the file is empty" in capsys.readouterr().err


def test_a_file_without_a_header_row_is_one_problem(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first record taken as the header gave one "unknown column" line per value, each
    with the whole list of known columns, and never said that the header row is missing."""
    csv_file = _write(tmp_path, "C1,Jane,US,jane@example.com\nC2,Bob,US,bob@example.com\n")
    assert main(["erp", "load", csv_file, "--erp", erp_url]) == exitcodes.ERROR
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(
        f"{csv_file}:1: the first line must name the columns; none of C1, Jane, US, ... is a "
        "column for customers (known: no, name, "
    )
    assert err[1:] == [f"{csv_file}: 1 problem; nothing was loaded"]


def test_a_nul_character_is_a_row_problem_on_every_database(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite stored a NUL in a name; PostgreSQL refused the whole load with a driver error
    naming no row."""
    csv_file = _write(tmp_path, b"no,name\nC1,Jane\nC2,Nul\x00Name\n")
    assert main(["erp", "load", csv_file, "--erp", erp_url]) == exitcodes.ERROR
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{csv_file}:3: name: contains a NUL character (0x00)",
        f"{csv_file}: 1 problem; nothing was loaded",
    ]
    assert _nos(erp_url) == []


def test_control_characters_are_a_row_problem(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A terminal escape in a loaded name reached whoever read `erp export` (issue 10 item
    11); tabs and line breaks inside a quoted value stay allowed."""
    csv_file = _write(tmp_path, 'no,name\nC1,"Jane\tDoe"\nC2,Eve\x1b[2J\nC3,Bob\x9b\n')
    assert main(["erp", "load", csv_file, "--erp", erp_url]) == exitcodes.ERROR
    assert capsys.readouterr().err.splitlines() == [
        f"{csv_file}:3: name: contains a control character (0x1b)",
        f"{csv_file}:4: name: contains a control character (0x9b)",
        f"{csv_file}: 2 problems; nothing was loaded",
    ]


def test_csv_export_neutralises_formulas_and_loads_them_back(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name starting with = was exported as a live spreadsheet formula (issue 10 item 11)."""
    csv_file = _write(
        tmp_path,
        "no,name,contact,phone,address\n"
        'C1,"=HYPERLINK(""http://evil.example"",""x"")",@SUM(A1),+1 415-555-0100,-5 Main St\n'
        "C2,+cmd|' /C calc'!A0,-2+3,-42,\n",
    )
    assert main(["erp", "load", csv_file, "--erp", erp_url]) == exitcodes.OK
    capsys.readouterr()
    assert main(["erp", "export", "--erp", erp_url]) == exitcodes.OK
    out = capsys.readouterr().out
    rows = {line.split(",", 1)[0]: line for line in out.splitlines()[1:]}
    assert rows["C1"].startswith('C1,"\'=HYPERLINK(""http://evil.example"",""x"")",,\'@SUM(A1),')
    assert ",+1 415-555-0100," in rows["C1"]  # a phone number calls nothing: kept as it is
    assert ",'-5 Main St," in rows["C1"]
    assert rows["C2"].startswith("C2,'+cmd|' /C calc'!A0,,'-2+3,") and ",-42," in rows["C2"]
    # the quote comes off again on the way back in
    exported = tmp_path / "exported.csv"
    exported.write_text(out, encoding="utf-8")
    assert main(["erp", "load", str(exported), "--erp", erp_url, "--update"]) == exitcodes.OK
    with open_reader(erp_url) as reader:
        [c1, c2] = list(reader.iter_customers())
    assert c1.name == '=HYPERLINK("http://evil.example","x")' and c1.contact == "@SUM(A1)"
    assert c1.address == "-5 Main St" and c2.name == "+cmd|' /C calc'!A0"
    assert c2.contact == "-2+3" and c2.phone == "-42"


def test_country_codes_and_names_are_checked_against_their_own_lengths(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A country code of 13 characters (max 10) or a name of 60 (max 50) passed the
    customer-sized checks: SQLite stored them, PostgreSQL refused the whole load with "value
    too long for type character varying(10)" and no line."""
    csv_file = _write(
        tmp_path, f"code,iso_code,name\nLONGCODE12345,US,x\nZZ,US,{'N' * 60}\n", "countries.csv"
    )
    assert main(["erp", "load", csv_file, "--kind", "countries", "--erp", erp_url]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{csv_file}:2: code: too long (13 characters, max 10)",
        f"{csv_file}:3: name: too long (60 characters, max 50)",
        f"{csv_file}: 2 problems; nothing was loaded",
    ]


def test_load_countries_and_templates(
    erp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    countries = _write(tmp_path, "code,iso_code,name\nHR,HR,Croatia\nZZ,QQ,Nowhere\n", "c.csv")
    assert main(["erp", "load", countries, "--kind", "countries", "--erp", erp_url]) == 1
    assert "c.csv:3: iso_code: 'QQ' is not an ISO 3166-1 alpha-2 code" in capsys.readouterr().err
    countries = _write(tmp_path, "code,iso_code,name\nHR,HR,Croatia\n", "c.csv")
    assert main(["erp", "load", countries, "--kind", "countries", "--erp", erp_url]) == 0
    templates = _write(tmp_path, "code,description,tax_liable\nUS-RETAIL,US retail,true\n", "t.csv")
    assert main(["erp", "load", templates, "--kind", "templates", "--erp", erp_url]) == 0
    again = _write(tmp_path, "code,description\nDEFAULT,x\n", "t2.csv")
    assert main(["erp", "load", again, "--kind", "templates", "--erp", erp_url]) == 1
    assert "t2.csv:2: code: template DEFAULT already exists" in capsys.readouterr().err
    with open_reader(erp_url) as reader:
        reference = reader.reference()
    assert any(c.code == "HR" and c.iso_code == "HR" for c in reference.countries)
    template = {t.code: t for t in reference.templates}["US-RETAIL"]
    assert template.fields == {"tax_liable": True}


def test_url_from_environment_and_usage_errors(
    erp_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUSTSYNC_ERP_URL", raising=False)
    assert main(["erp", "export"]) == exitcodes.USAGE
    assert "no ERP database given" in capsys.readouterr().err
    monkeypatch.setenv("CUSTSYNC_ERP_URL", erp_url)
    assert main(["erp", "export"]) == exitcodes.OK
    assert capsys.readouterr().out.startswith("no,name")
    assert main(["erp", "export", "--changed-since", "yesterday"]) == exitcodes.USAGE
    assert main(["erp", "export", "--changed-since", "2026-01-01T00:00"]) == exitcodes.USAGE
    assert "needs a time zone" in capsys.readouterr().err


def test_url_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CUSTSYNC_ERP_URL", raising=False)
    config = tmp_path / "custsync.yaml"
    config.write_text(
        'erp: {url: "sqlite:///erp.db"}\n'
        "shops:\n  - name: main\n    shopify: {url: 'http://127.0.0.1:9'}\n",
        encoding="utf-8",
    )
    assert main(["erp", "init", "--config", str(config)]) == exitcodes.OK
    assert (tmp_path / "erp.db").is_file()  # relative to the config file
    monkeypatch.chdir(tmp_path)
    assert main(["erp", "export"]) == exitcodes.OK
    assert main(["erp", "export", "--config", "missing.yaml"]) == exitcodes.USAGE
    capsys.readouterr()


def test_missing_database_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'nope.db'}"
    assert main(["erp", "export", "--erp", url]) == exitcodes.ERROR
    assert "does not exist: run `custsync erp init" in capsys.readouterr().err
    assert main(["erp", "export", "--erp", "nonsense"]) == exitcodes.ERROR
    assert "has no scheme" in capsys.readouterr().err


def test_the_example_worlds_customers_load_and_their_modified_at_is_the_load_time(
    erp_url: str, project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's steps with the example world's CSV: its ``modified_at`` column is read
    past with a note; the loaded customers are changed now (an incremental export sees them,
    even when its cursor is after the file's times)."""
    example = project_root / "examples" / "world" / "erp_customers.csv"
    header = example.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "modified_at" in header
    before = datetime.now(UTC) - timedelta(seconds=1)

    assert main(["erp", "load", str(example), "--erp", erp_url]) == exitcodes.OK

    out, err = capsys.readouterr()
    assert "loaded 13 customers (13 new, 0 updated)" in out
    assert f"{example}:1: modified_at: ignored: the ERP sets it to the time of the load" in err
    with open_reader(erp_url) as reader:
        customers = list(reader.iter_customers())
        changed = list(reader.iter_customers(changed_since=before))
    assert len(customers) == 13 and len(changed) == 13
    assert customers[0].no == "C00010" and customers[0].name == "Jane Doe"

    assert main(["erp", "load", str(example), "--erp", erp_url, "--update"]) == exitcodes.OK
    assert "(0 new, 13 updated)" in capsys.readouterr().out
