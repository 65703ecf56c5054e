"""The files connector: a world kept in a folder (YAML, JSON Lines, CSV)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors import files
from custsync.connectors.files import load_links, load_orders
from custsync.engine import registry
from custsync.engine.errors import ConfigError
from custsync.engine.ports import ErpReader, ReportsProblems, ShopifyReader

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "world"


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# The example world
# --------------------------------------------------------------------------------------------


def test_example_world_reads_through_the_registry() -> None:
    erp = registry.open_erp_reader(f"files:{EXAMPLE}")
    shop = registry.open_shopify_reader(f"files://{EXAMPLE}")
    assert isinstance(erp, ErpReader) and isinstance(shop, ShopifyReader)
    assert isinstance(erp, ReportsProblems) and isinstance(shop, ReportsProblems)

    numbers = [customer.no for customer in erp.iter_customers()]
    assert numbers == sorted(numbers) and len(numbers) == 12 and "C00130" not in numbers
    reference = erp.reference()
    assert {c.code: c.iso_code for c in reference.countries}["EL"] == "GR"
    assert reference.company.country_code == "US"
    assert {t.code for t in reference.templates} == {"US-RETAIL", "EU-RETAIL"}
    muller = erp.get_customer("C00040")
    assert muller is not None and muller.name == "Hans Müller"
    assert muller.extra["gen_bus_posting_group"] == "EU"
    assert muller.modified_at == datetime(2026, 1, 11, 9, tzinfo=UTC)

    ids = [customer.id for customer in shop.iter_customers()]
    assert ids[0] == "gid://shopify/Customer/1001" and len(ids) == 8
    since = datetime(2026, 2, 2, tzinfo=UTC)
    assert [c.id for c in shop.iter_customers(since)] == [
        "gid://shopify/Customer/1004",
        "gid://shopify/Customer/1005",
        "gid://shopify/Customer/1006",
        "gid://shopify/Customer/1007",
        "gid://shopify/Customer/1008",
    ]
    jane = shop.get_customer("gid://shopify/Customer/1001")
    assert jane is not None and jane.default_address is not None
    assert jane.default_address.id == "gid://shopify/MailingAddress/5001"
    assert shop.find_by_email("john.smith@example.com").id.endswith("/1002")  # type: ignore[union-attr]
    assert shop.find_by_phone("+30 210 555 0303").id.endswith("/1003")  # type: ignore[union-attr]
    assert shop.find_by_email("nobody@example.com") is None
    assert list(shop.shipping_countries()) == ["DE", "GR", "JP", "US"]

    order = shop.get_order("7001")
    assert order is not None and order.customer is not None
    assert order.customer.email == "jane.doe@example.com"  # resolved from the id
    assert shop.get_order("gid://shopify/Order/7003").customer is None  # type: ignore[union-attr]


def test_example_world_bad_records_are_reported_with_their_line() -> None:
    erp = files.erp.open_reader(f"files:{EXAMPLE}")
    shop = files.shopify.open_reader(str(EXAMPLE))
    [erp_problem] = erp.problems()
    assert erp_problem.location.endswith("erp_customers.csv:14")
    assert erp_problem.record == "C00130"
    assert "'modified_at'" in erp_problem.message and "'yesterday'" in erp_problem.message
    [shop_problem] = shop.problems()
    assert shop_problem.location.endswith("shopify_customers.yaml:77")
    assert shop_problem.record == "gid://shopify/Customer/1009"


def test_relative_url_resolves_against_base_dir() -> None:
    reader = files.erp.open_reader("files:./world", base_dir=EXAMPLE.parent)
    assert reader.get_customer("C00010") is not None


def test_writers_are_refused() -> None:
    with pytest.raises(ConfigError, match="read-only; use it with plan"):
        registry.open_erp_writer(f"files:{EXAMPLE}")
    with pytest.raises(ConfigError, match="read-only"):
        registry.open_shopify_writer(f"files:{EXAMPLE}")


def test_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        files.erp.open_reader(f"files:{tmp_path / 'nope'}")
    with pytest.raises(ConfigError, match="names no folder"):
        files.erp.open_reader("files:")


def test_two_files_of_one_kind_are_ambiguous(tmp_path: Path) -> None:
    _write(tmp_path, "erp_customers.yaml", "[]\n")
    _write(tmp_path, "erp_customers.csv", "no\n")
    with pytest.raises(ConfigError, match=r"erp_customers.yaml, erp_customers.csv exist; keep one"):
        files.erp.open_reader(str(tmp_path))


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def test_csv_not_utf8_names_file_line_and_byte(tmp_path: Path) -> None:
    _write(tmp_path, "erp_customers.csv", b"no,name\nC1,Ann\nC2,M\xfcller\n")
    with pytest.raises(ConfigError) as exc:
        files.erp.open_reader(str(tmp_path))
    assert exc.value.render() == (
        f"{tmp_path}/erp_customers.csv:3:5: not UTF-8 (byte 0xfc); save the file as UTF-8"
    )


@pytest.mark.parametrize("name", ["erp_customers.csv", "company.yaml", "links.yaml"])
def test_a_world_file_that_cannot_be_read_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A file without read permission was a PermissionError traceback (the tests run as
    root, who may read anything: the refusal is the operating system's, simulated here)."""
    for kind, text in (
        ("erp_customers.csv", "no,name\nC1,Ann\n"),
        ("company.yaml", "name: X\n"),
        ("links.yaml", "[]\n"),
    ):
        _write(tmp_path, kind, text)
    unreadable = tmp_path / name
    read_bytes, open_file = Path.read_bytes, Path.open

    def refuse(path: Path) -> bytes:
        if path == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    def refuse_open(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == unreadable:  # large files are read line by line (CSV, JSON Lines)
            raise PermissionError(13, "Permission denied", str(path))
        return open_file(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(Path, "open", refuse_open)
    with pytest.raises(ConfigError) as raised:
        files.erp.open_reader(str(tmp_path))
        load_links(tmp_path)
    assert raised.value.render() == f"{unreadable}: cannot read the file: Permission denied"


def test_csv_unknown_and_missing_columns(tmp_path: Path) -> None:
    _write(tmp_path, "erp_customers.csv", "no,name,emial\nC1,Ann,a@example.com\n")
    with pytest.raises(ConfigError, match=r"erp_customers.csv:1: unknown column 'emial'; known"):
        files.erp.open_reader(str(tmp_path))
    _write(tmp_path, "erp_customers.csv", "name,email\nAnn,a@example.com\n")
    with pytest.raises(ConfigError, match=r"erp_customers.csv:1: missing column 'no'"):
        files.erp.open_reader(str(tmp_path))
    # a file without a header row: its first record is no header, say so
    _write(tmp_path, "erp_customers.csv", "C1,Ann,a@example.com\n")
    with pytest.raises(ConfigError) as raised:
        files.erp.open_reader(str(tmp_path))
    assert raised.value.render().startswith(
        f"{tmp_path}/erp_customers.csv:1: the first line must name the columns; unknown "
        "columns 'C1', 'Ann', 'a@example.com'; known columns: no, name, "
    )


def test_csv_bad_rows_are_skipped_and_the_rest_is_read(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "erp_customers.csv",
        "no,name,tax_liable,modified_at\n"
        "C1,Ann,true,2026-01-01T00:00:00\n"
        "C2,Bob,maybe,2026-01-01\n"
        "C3,Cid\n"
        ",Nameless,false,\n"
        "C1,Ann again,false,\n"
        "\n"
        "C4,Dee,no,\n",
    )
    reader = files.erp.open_reader(str(tmp_path))
    assert [c.no for c in reader.iter_customers()] == ["C1", "C4"]
    c1 = reader.get_customer("C1")
    assert c1 is not None and c1.extra["tax_liable"] is True
    assert c1.modified_at == datetime(2026, 1, 1, tzinfo=UTC)  # naive = UTC
    problems = {p.location.rsplit(":", 1)[1]: p for p in reader.problems()}
    assert set(problems) == {"3", "4", "5", "6"}
    assert problems["3"].record == "C2"
    assert problems["3"].message == "field 'tax_liable': expected true or false, got 'maybe'"
    assert problems["4"].message == "the row has 2 values, the header has 4 columns"
    assert problems["5"].message == "field 'no' is required"
    assert "duplicate 'C1' (first at" in problems["6"].message and "csv:2)" in problems["6"].message


def test_customer_numbers_are_read_as_codes_trimmed_and_upper_case(tmp_path: Path) -> None:
    """G001, g001 and " G001 " were three customers (issue 10 item 12)."""
    _write(tmp_path, "erp_customers.csv", "no,name\nG001,Ann\ng001,Bob\n\" G001 \",Cid\n")
    _write(
        tmp_path,
        "links.yaml",
        "- {shop: main, shopify_id: 1, erp_no: ' g001'}\n",
    )
    reader = files.erp.open_reader(str(tmp_path))
    assert [(c.no, c.name) for c in reader.iter_customers()] == [("G001", "Ann")]
    problems = [(p.location.rsplit(":", 1)[1], p.message) for p in reader.problems()]
    assert [line for line, _ in problems] == ["3", "4"]
    assert all("duplicate 'G001' (first at" in message for _, message in problems)
    [link] = files.load_links(tmp_path).records
    assert link.erp_no == "G001"


def test_csv_quoted_multiline_values_keep_row_numbers(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "erp_customers.csv",
        'no,address\nC1,"line one\nline two"\nC2,x\nC3,"unterminated\n',
    )
    with pytest.raises(ConfigError, match=r"erp_customers.csv:\d+: CSV:"):
        files.erp.open_reader(str(tmp_path))
    _write(tmp_path, "erp_customers.csv", 'no,address,modified_at\nC1,"a\nb",\nC2,x,bad\n')
    reader = files.erp.open_reader(str(tmp_path))
    [problem] = reader.problems()
    assert problem.location.endswith(":4")


def test_shopify_csv_flat_format_with_address_rows(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "shopify_customers.csv",
        "id,first_name,email,tags,updated_at,address_id,address_default,address_city,address_country_code\n"
        "11,Ann,ann@example.com,vip;b2b,2026-01-01T00:00:00Z,71,true,Berlin,DE\n"
        "11,,,,,72,false,Paris,FR\n"
        "12,Bob,bob@example.com,,,,,,\n"
        "13,Cid,,,,,perhaps,,\n",
    )
    reader = files.shopify.open_reader(str(tmp_path))
    ann = reader.get_customer("gid://shopify/Customer/11")
    assert ann is not None and ann.tags == ("vip", "b2b")
    assert [a.city for a in ann.addresses] == ["Berlin", "Paris"]
    assert ann.addresses[1].id == "gid://shopify/MailingAddress/72"
    bob = reader.get_customer("gid://shopify/Customer/12")
    assert bob is not None and bob.addresses == ()
    [problem] = reader.problems()
    assert problem.record == "gid://shopify/Customer/13" and "'default'" in problem.message


def test_shopify_csv_customer_with_a_bad_row_is_skipped_whole(tmp_path: Path) -> None:
    """A bad first row was skipped, but the customer's next (address) row then made a
    customer of its own, without name or e-mail, which the plan would create in the ERP."""
    _write(
        tmp_path,
        "shopify_customers.csv",
        "id,first_name,email,updated_at,address_city,address_country_code\n"
        "21,Ann,ann@example.com,yesterday,Berlin,DE\n"
        "21,,,,Paris,FR\n"
        "22,Bob,bob@example.com,,Rome,IT\n"
        "22,,,,Milan,IT\n"
        "22,,,,Turin,IT\n"
        "23,Cid,cid@example.com,,Oslo,NO\n",
    )
    # Bob's third row is the bad one: his first two rows go too
    path = tmp_path / "shopify_customers.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",,,,Turin,", ",,,soon,Turin,"))
    reader = files.shopify.open_reader(str(tmp_path))
    assert [c.id for c in reader.iter_customers()] == ["gid://shopify/Customer/23"]
    problems = [(p.location.rsplit(":", 1)[1], p.record, p.message) for p in reader.problems()]
    ann, bob = "gid://shopify/Customer/21", "gid://shopify/Customer/22"
    assert problems == [
        (
            "2",
            ann,
            "field 'updated_at': 'yesterday' is not an ISO 8601 date-time "
            "(e.g. 2026-03-01T12:00:00Z)",
        ),
        ("3", ann, f"another row of this customer is bad ({path}:2)"),
        (
            "6",
            bob,
            "field 'updated_at': 'soon' is not an ISO 8601 date-time (e.g. 2026-03-01T12:00:00Z)",
        ),
    ]


# --------------------------------------------------------------------------------------------
# YAML and JSON Lines
# --------------------------------------------------------------------------------------------


def test_yaml_record_problems_name_the_field_and_line(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "shopify_customers.yaml",
        "- id: 1\n"
        "  emial: a@example.com\n"
        "- just text\n"
        "- id: abc\n"
        "- id: 2\n"
        "  addresses:\n"
        "    - {city: Rome, default: sometimes}\n"
        "- id: 3\n"
        "  first_name: [not, text]\n"
        "- id: 4\n"
        "  first_name: Dee\n",
    )
    reader = files.shopify.open_reader(str(tmp_path))
    assert [c.id for c in reader.iter_customers()] == ["gid://shopify/Customer/4"]
    messages = {p.location.rsplit(":", 1)[1]: p.message for p in reader.problems()}
    assert messages == {
        "1": "unknown field 'emial' for a Shopify customer",
        "3": "expected a mapping of fields for a Shopify customer, got 'just text'",
        "4": "field 'id': 'abc' is neither a number nor gid://shopify/Customer/...",
        "5": "addresses[0]: field 'default': expected true or false, got 'sometimes'",
        "8": "field 'first_name': expected text, got list ['not', 'text']",
    }


def test_yaml_dates_unquoted_and_impossible_are_read_per_record(tmp_path: Path) -> None:
    """An unquoted ``updated_at: 2026-03-01`` (a YAML date) was refused as "got
    datetime.date(...)" while the same text in CSV was read; ``2026-13-45`` stopped the whole
    file with a ValueError traceback instead of skipping its record."""
    _write(
        tmp_path,
        "shopify_customers.yaml",
        "- {id: 1, first_name: Ann, updated_at: 2026-03-01}\n"
        "- {id: 2, first_name: Bob, updated_at: 2026-13-45}\n"
        "- {id: 3, first_name: Cid, updated_at: 2026-03-01T10:00:00Z}\n",
    )
    _write(
        tmp_path,
        "links.yaml",
        "- {shop: m, shopify_id: 1, erp_no: C, last_import_at: 2026-02-30}\n",
    )
    reader = files.shopify.open_reader(str(tmp_path))
    updated = {c.id.rsplit("/", 1)[1]: c.updated_at for c in reader.iter_customers()}
    assert updated == {
        "1": datetime(2026, 3, 1, tzinfo=UTC),
        "3": datetime(2026, 3, 1, 10, tzinfo=UTC),
    }
    [problem] = reader.problems()
    assert problem.location.endswith("shopify_customers.yaml:2")
    assert problem.record == "gid://shopify/Customer/2"
    assert problem.message == (
        "field 'updated_at': '2026-13-45' is not an ISO 8601 date-time (e.g. 2026-03-01T12:00:00Z)"
    )
    [link_problem] = load_links(tmp_path).problems
    assert link_problem.message.startswith("field 'last_import_at': '2026-02-30' is not an ISO")


def test_yaml_file_level_errors(tmp_path: Path) -> None:
    _write(tmp_path, "countries.yaml", "code: US\n")
    with pytest.raises(ConfigError, match=r"countries.yaml:1: expected a list of records"):
        files.erp.open_reader(str(tmp_path))
    _write(tmp_path, "countries.yaml", "- {code: US\n")
    with pytest.raises(ConfigError, match=r"countries.yaml:2:1: YAML syntax"):
        files.erp.open_reader(str(tmp_path))
    _write(tmp_path, "countries.yaml", "countries:\n  - {code: US, iso_code: us}\n")
    assert files.erp.open_reader(str(tmp_path)).reference().countries[0].iso_code == "US"
    _write(tmp_path, "company.yaml", "name: X\ncountry: US\n")
    with pytest.raises(ConfigError, match=r"company.yaml:1: unknown field 'country'"):
        files.erp.open_reader(str(tmp_path))


def test_jsonl_bad_line_is_skipped(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "erp_customers.jsonl",
        '{"no": "C1", "name": "Ann"}\n\n{"no": "C2", "name": \n{"no": 3, "phone": 4155550101}\n',
    )
    reader = files.erp.open_reader(str(tmp_path))
    assert [c.no for c in reader.iter_customers()] == ["3", "C1"]  # number order
    assert reader.get_customer("3").phone == "4155550101"  # type: ignore[union-attr]
    [problem] = reader.problems()
    assert problem.location.endswith("erp_customers.jsonl:3")
    assert problem.message.startswith("not valid JSON")


def test_templates_need_scalar_fields(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "templates.yaml",
        "- {code: A, fields: {payment_terms_code: 14D}}\n- {code: B, fields: {x: [1]}}\n",
    )
    reader = files.erp.open_reader(str(tmp_path))
    assert [t.code for t in reader.reference().templates] == ["A"]
    assert "field 'fields.x': expected a single value" in reader.problems()[0].message


# --------------------------------------------------------------------------------------------
# Links and orders
# --------------------------------------------------------------------------------------------


def test_load_links_csv_and_problems(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "links.csv",
        "shop,shopify_id,erp_no,address_ids,last_import_at\n"
        "main,1,C1,71;72,2026-01-01T00:00:00Z\n"
        "main,2,,,\n"
        "main,gid://shopify/Customer/1,C9,,\n",
    )
    loaded = load_links(path)
    [link] = loaded.records
    assert link.shopify_id == "gid://shopify/Customer/1" and link.erp_no == "C1"
    assert link.address_ids == (
        "gid://shopify/MailingAddress/71",
        "gid://shopify/MailingAddress/72",
    )
    assert loaded.problems[0].message == "field 'erp_no' is required"
    assert "duplicate 'main/gid://shopify/Customer/1'" in loaded.problems[1].message
    assert load_links(tmp_path / "..").records == ()  # a folder without links
    with pytest.raises(ConfigError, match="no such file"):
        load_links(tmp_path / "missing.csv")


def test_load_orders_json_list(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "my-orders.json",
        '[{"id": 1, "name": "#1", "customer": {"id": 5, "email": "a@example.com"}},'
        ' {"id": 2, "ship_to": {"country_code": "US", "zipp": "1"}}]',
    )
    loaded = load_orders(path)
    [order] = loaded.records
    assert order.id == "gid://shopify/Order/1"
    assert order.customer is not None and order.customer.email == "a@example.com"
    [problem] = loaded.problems
    assert problem.location.endswith("my-orders.json:[1]")
    assert problem.message == "ship_to: unknown field 'zipp' for the order's ship_to"
    _write(tmp_path, "bad.json", "[1,")
    with pytest.raises(ConfigError, match=r"bad.json:1:\d+: not valid JSON"):
        load_orders(tmp_path / "bad.json")


def test_yaml_leading_zero_post_codes_and_code_like_words_stay_text(tmp_path: Path) -> None:
    # YAML 1.1 would read 01067 as octal 567 and NO (Norway) as false: both silently wrong
    _write(
        tmp_path,
        "erp_customers.yaml",
        "- {no: C1, name: Dresden GmbH, city: Dresden, post_code: 01067, country_code: DE}\n"
        "- {no: C2, name: Oslo AS, city: Oslo, post_code: 0150, country_code: NO, county: ON}\n",
    )
    reader = files.erp.open_reader(str(tmp_path))
    customers = {c.no: c for c in reader.iter_customers()}
    assert list(reader.problems()) == []
    assert (customers["C1"].post_code, customers["C1"].country_code) == ("01067", "DE")
    assert (customers["C2"].post_code, customers["C2"].country_code) == ("0150", "NO")
    assert customers["C2"].county == "ON"


# --------------------------------------------------------------------------------------------
# The direct reading of common records (large worlds) reads what the checks read
# --------------------------------------------------------------------------------------------

_ERP_ROW: dict[str, Any] = {
    "no": " c00012 ",
    "name": "Ann Lee",
    "address": "1 Main St",
    "city": "Springfield",
    "post_code": "12345",
    "county": "IL",
    "country_code": "US",
    "phone": "+1 217 555 0101",
    "email": "ann@example.com",
}
_SHOPIFY_ROW: dict[str, Any] = {
    "id": 1001,
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann@example.com",
    "phone": "+12175550101",
    "note": "vip",
    "addresses": [
        {"id": 5001, "default": True, "address1": "1 Main St", "city": "Springfield",
         "zip": "12345", "country_code": "US", "province_code": "IL"},
    ],
}


def _erp_variants() -> list[Any]:
    base = dict(_ERP_ROW)
    return [
        base,
        {"no": "C1"},
        {**base, "modified_at": "2026-03-01T12:00:00"},
        {**base, "modified_at": "2026-03-01T12:00:00+02:00", "etag": "W/1"},
        {**base, "tax_area_code": "US-IL", "currency_code": "", "gen_bus_posting_group": "EU"},
        {**base, "tax_liable": "yes"},
        # bad or unusual rows: the checked path decides (and names every problem)
        {**base, "no": ""},
        {**base, "no": "   "},
        {**base, "name": None},
        {**base, "phone": 4155550101},
        {**base, "modified_at": "yesterday"},
        {**base, "emial": "x"},
        {**base, "name": ["A"]},
        ["not", "a", "mapping"],
    ]


def _shopify_variants() -> list[Any]:
    base = dict(_SHOPIFY_ROW)
    address = base["addresses"][0]
    return [
        base,
        {"id": "1002"},
        {**base, "id": "gid://shopify/Customer/7"},
        {**base, "id": " gid://shopify/Customer/7 "},
        {**base, "id": " 12 "},
        {**base, "updated_at": "2026-02-01T08:30:00Z", "state": "ENABLED"},
        {**base, "tags": "a; b"},
        {**base, "addresses": []},
        {**base, "addresses": None},
        {**base, "addresses": [{**address, "default": "yes"}]},
        {**base, "addresses": [{**address, "id": "gid://shopify/MailingAddress/9"}]},
        # bad or unusual records
        {**base, "id": -3},
        {**base, "id": True},
        {**base, "id": "abc"},
        {**base, "id": ""},
        {**base, "updated_at": 7},
        {**base, "email": None},
        {**base, "addresses": "1 Main St"},
        {**base, "addresses": [{**address, "zip": 12345}]},
        {**base, "addresses": [{**address, "colour": "red"}]},
        {**base, "addresses": [{**address, "id": "x"}]},
    ]


def _read(parse: Any, data: Any) -> Any:
    try:
        return parse(data)
    except files._Bad as exc:
        return f"bad: {exc}"


@pytest.mark.parametrize(
    ("parse", "plain", "checked", "rows"),
    [
        (
            files._erp_customer,
            files._plain_erp_customer,
            files._checked_erp_customer,
            _erp_variants(),
        ),
        (
            files._shopify_customer,
            files._plain_shopify_customer,
            files._checked_shopify_customer,
            _shopify_variants(),
        ),
    ],
)
def test_common_records_read_directly_equal_the_checked_reading(
    parse: Any, plain: Any, checked: Any, rows: list[Any]
) -> None:
    read_directly = 0
    for row in rows:
        got, expected = _read(parse, row), _read(checked, row)
        assert got == expected, row
        assert repr(got) == repr(expected), row  # the plan's fingerprints digest the repr
        read_directly += not isinstance(_read(plain, row), str | type(None))
    assert read_directly >= 5  # the common rows do take the direct way


def test_repeated_place_and_name_texts_are_one_string(tmp_path: Path) -> None:
    rows = [{**_ERP_ROW, "no": f"C{i}", "email": f"p{i}@example.com"} for i in range(3)]
    _write(tmp_path, "erp_customers.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    first, second, _ = files.erp.open_reader(str(tmp_path)).iter_customers()
    assert first.city is second.city and first.name is second.name
    assert first.email is not second.email


def test_jsonl_not_utf8_names_line_and_byte_after_good_lines(tmp_path: Path) -> None:
    good = "".join(f'{{"no": "C{i}", "name": "Kunde {i}"}}\n' for i in range(3000))
    _write(tmp_path, "erp_customers.jsonl", ("\ufeff" + good).encode() + b'{"no": "M\xfcller"}\n')
    with pytest.raises(ConfigError) as error:
        files.erp.open_reader(str(tmp_path))
    assert error.value.render().endswith(
        "erp_customers.jsonl:3001:10: not UTF-8 (byte 0xfc); save the file as UTF-8"
    )
