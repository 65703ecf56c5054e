"""Per-country setup initialisation: provinces from ISO 3166-2 or the store, into custsync.yaml."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from custsync.connectors.shopify_double import ShopifyDouble, seed_store
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.config import require_config
from custsync.engine.errors import FatalError
from custsync.engine.model import TaxArea
from custsync.engine.run.countries import (
    CountryProvinces,
    init_config_countries,
    iso_provinces,
    store_provinces,
)

CONFIG = """\
# yaml-language-server: $schema=./schemas/config.schema.json
erp: {{url: "sqlite:///erp.db"}}   # the ERP
shops:
  - name: main
    shopify:
      url: "{url}"   # the store
      access_token_env: CUSTSYNC_TEST_TOKEN
    settings:
      customer_import: all_customers   # keep this comment
    countries:
      - iso_code: US
        customer_template_code: US-RETAIL   # and this one
        tax_areas:
          - {{county: California, county_code: CA, tax_area_code: CA-TAX, tax_liable: true}}
          - {{county: Nevada State, county_code: NV}}
  - name: outlet
    shopify: {{url: "http://127.0.0.1:9"}}
"""


def _config(tmp_path: Path, url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "custsync.yaml"
    path.write_text(CONFIG.format(url=url), encoding="utf-8")
    return path


# ---- provinces -------------------------------------------------------------------------------


def test_iso_provinces_drop_the_country_prefix() -> None:
    us = dict(iso_provinces("US"))
    assert us["CA"] == "California" and us["DC"] == "District of Columbia"
    assert len(us) >= 51 and not any(code.startswith("US-") for code in us)
    ca = dict(iso_provinces("CA"))
    assert ca["ON"] == "Ontario" and len(ca) == 13


def test_iso_provinces_pick_the_level_shopify_uses() -> None:
    es = dict(iso_provinces("ES"))
    assert es["M"] == "Madrid" and "MD" not in es  # provinces, not autonomous communities
    it = dict(iso_provinces("it"))
    assert "MI" in it and "25" not in it  # Milano, not the region Lombardia
    assert dict(iso_provinces("JP"))["JP-13"] == "Tokyo"  # Shopify keeps JP- codes
    assert "HK" not in dict(iso_provinces("CN"))
    assert iso_provinces("DE") == () and iso_provinces("GB") == ()  # no provinces in Shopify


class _Store:
    def __init__(self, provinces: Mapping[str, Sequence[tuple[str, str]]] | Exception) -> None:
        self._provinces = provinces

    def shipping_countries(self) -> list[str]:
        return ["us", "CA", "DE"]

    def shipping_provinces(self) -> Mapping[str, Sequence[tuple[str, str]]]:
        if isinstance(self._provinces, Exception):
            raise self._provinces
        return self._provinces


def test_store_provinces_win_and_iso_fills_the_gaps() -> None:
    found = store_provinces(_Store({"US": [("CA", "California")], "DE": []}))
    assert found == [
        CountryProvinces("CA", iso_provinces("CA"), "iso"),  # not in the delivery zones
        CountryProvinces("DE", (), "store"),
        CountryProvinces("US", (("CA", "California"),), "store"),
    ]
    notes: list[str] = []
    fallback = store_provinces(_Store(FatalError("ACCESS_DENIED read_shipping")), ["US"], notes)
    assert fallback == [CountryProvinces("US", iso_provinces("US"), "iso")]
    assert "ACCESS_DENIED" in notes[0]


# ---- the config file -------------------------------------------------------------------------


def test_init_adds_missing_rows_and_keeps_existing_ones(tmp_path: Path) -> None:
    path = _config(tmp_path)
    countries = [
        CountryProvinces("US", (("CA", "Calif."), ("NV", "Nevada"), ("OR", "Oregon"))),
        CountryProvinces("CA", (("ON", "Ontario"), ("NO", "Nowhere"))),
        CountryProvinces("DE", ()),
    ]
    report = init_config_countries(path, "main", countries)
    assert report.written
    results = {r.iso_code: r for r in report.results}
    assert results["US"].added_rows == ("OR",) and not results["US"].added_setup
    assert results["CA"].added_setup and results["CA"].added_rows == ("ON", "NO")
    assert results["DE"].added_setup and results["DE"].added_rows == ()

    text = path.read_text(encoding="utf-8")
    assert "# keep this comment" in text and "# and this one" in text
    assert "# yaml-language-server" in text.splitlines()[0]
    shop = require_config(path).shop("main")
    us = shop.country_setups["US"]
    assert us.customer_template_code == "US-RETAIL"
    assert us.tax_areas[:2] == (
        TaxArea("California", "CA", "CA-TAX", True),  # kept as it was
        TaxArea("Nevada State", "NV"),
    )
    assert us.tax_areas[2] == TaxArea("Oregon", "OR")
    ca = shop.country_setups["CA"]
    assert [(t.county_code, t.county) for t in ca.tax_areas] == [
        ("ON", "Ontario"),  # quoted in the file: YAML 1.1 would read ON as a boolean
        ("NO", "Nowhere"),
    ]
    assert shop.country_setups["DE"].tax_areas == ()
    assert require_config(path).shop("outlet").country_setups == {}

    # a second run adds nothing and leaves the file byte for byte
    again = init_config_countries(path, "main", countries)
    assert not again.changed and not again.written
    assert path.read_text(encoding="utf-8") == text


def test_lines_not_changed_keep_their_spacing(tmp_path: Path) -> None:
    """ruamel respaced every line it wrote (`erp:   {url: ...}` -> `erp: {url: ...}`); only
    the added setups and rows are new lines now."""
    path = tmp_path / "custsync.yaml"
    original = (
        CONFIG.format(url="http://127.0.0.1:9")
        .replace("erp: {", "erp:   {")
        .replace("  - name: main", "  - name:    main   #   the shop")
        .replace("{county: Nevada State,", "{county:  Nevada State ,")
    )
    path.write_text(original, encoding="utf-8")
    countries = [
        CountryProvinces("US", (("OR", "Oregon"),)),
        CountryProvinces("DE", ()),
    ]
    assert init_config_countries(path, "main", countries).written
    nevada = "          - {county:  Nevada State , county_code: NV}\n"
    assert nevada in original
    added = (
        "          - {county: Oregon, county_code: OR, tax_area_code: '', tax_liable: false, "
        "vat_bus_posting_group: ''}\n"
        "      - iso_code: DE\n"
        "        default_customer_no: ''\n"
        "        customer_template_code: ''\n"
        "        tax_areas: []\n"
    )
    assert path.read_text(encoding="utf-8") == original.replace(nevada, nevada + added)
    assert require_config(path).shop("main").country_setups["US"].tax_areas[1] == TaxArea(
        "Nevada State", "NV"
    )


def test_spacing_is_kept_only_where_it_does_not_change_a_value() -> None:
    from custsync.engine.run.countries import _keep_spacing

    assert _keep_spacing("a:   1   # one\nb: [x]\n", "a: 1     # one\nb:\n- x\n") == (
        "a:   1   # one\nb:\n- x\n"
    )
    # blanks inside quotes are part of the value: the dumped line is kept
    assert _keep_spacing('a: "x  y"\n', 'a: "x y"\n') == 'a: "x y"\n'


def test_dry_run_and_unknown_shop(tmp_path: Path) -> None:
    path = _config(tmp_path)
    before = path.read_bytes()
    report = init_config_countries(path, "main", [CountryProvinces("DE")], write=False)
    assert report.changed and not report.written and path.read_bytes() == before
    with pytest.raises(Exception, match="no shop named 'nope'"):
        init_config_countries(path, "nope", [CountryProvinces("DE")])


def test_a_block_style_empty_list_is_filled(tmp_path: Path) -> None:
    path = tmp_path / "custsync.yaml"
    path.write_text(
        "erp:\n  url: sqlite:///erp.db\nshops:\n- name: main\n  shopify:\n"
        "    url: http://127.0.0.1:9\n  countries: []\n",
        encoding="utf-8",
    )
    init_config_countries(path, "main", [CountryProvinces("US", (("CA", "California"),))])
    text = path.read_text(encoding="utf-8")
    assert "\n  countries:\n  - iso_code: US\n" in text
    assert require_config(path).shop().country_setups["US"].tax_areas == (
        TaxArea("California", "CA"),
    )


# ---- the command -----------------------------------------------------------------------------


def test_cli_from_iso(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path)
    args = ["countries", "init", "--config", str(path), "--shop", "main", "--from-iso"]
    assert main([*args, "--country", "ca", "--dry-run"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "CA: setup would add; 13 county rows would add from ISO 3166-2" in out
    assert "dry run, not written" in out
    assert main([*args, "--country", "CA"]) == exitcodes.OK
    assert "CA: setup added; 13 county rows added" in capsys.readouterr().out
    # without --country: completes the countries already set up
    assert main(args) == exitcodes.OK
    out = capsys.readouterr().out
    assert "US: setup kept (2 rows);" in out and "CA: kept (13 rows, nothing to add)" in out
    setups = require_config(path).shop("main").country_setups
    assert len(setups["US"].tax_areas) >= 51


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path)
    base = ["countries", "init", "--config", str(path)]
    assert main([*base, "--shop", "main", "--country", "XX"]) == exitcodes.USAGE
    assert "--country XX: not an ISO 3166-1 alpha-2" in capsys.readouterr().err
    assert main([*base, "--shop", "outlet", "--from-iso"]) == exitcodes.USAGE
    assert main(["countries", "init", "--config", str(tmp_path / "no.yaml")]) == exitcodes.USAGE
    assert main([*base, "--country", "DE"]) == exitcodes.ERROR  # two shops, none named
    assert "several shops" in capsys.readouterr().err


def test_cli_falls_back_to_iso_when_the_store_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CUSTSYNC_TEST_TOKEN", raising=False)  # no token: cannot reach it
    path = _config(tmp_path)
    base = ["countries", "init", "--config", str(path), "--shop", "main"]
    assert main([*base, "--from-store"]) == exitcodes.ERROR
    assert "the store of shop main is not reachable" in capsys.readouterr().err
    assert main([*base, "--country", "MX"]) == exitcodes.OK
    captured = capsys.readouterr()
    assert "note: the store is not reachable" in captured.err
    assert "MX: setup added; 32 county rows added from ISO 3166-2" in captured.out


def test_cli_from_the_store(
    tmp_path: Path,
    shopify_double: ShopifyDouble,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CUSTSYNC_TEST_TOKEN", shopify_double.token or "shpat_test")
    path = _config(tmp_path, shopify_double.url)
    assert main(["countries", "init", "--config", str(path), "--shop", "main"]) == exitcodes.OK
    captured = capsys.readouterr()
    assert "note:" not in captured.err and "ISO" not in captured.out  # the delivery zones
    assert "CA: setup added; 13 county rows added from store" in captured.out
    assert "DE: setup added; no provinces" in captured.out
    setups = require_config(path).shop("main").country_setups
    shipping = ["BE", "CA", "DE", "FR", "GB", "NL", "US"]  # the double's shipsToCountries
    assert sorted(setups) == shipping
    assert setups["US"].tax_areas[0] == TaxArea("California", "CA", "CA-TAX", True)
    assert any(t.county_code == "ON" for t in setups["CA"].tax_areas)
    assert setups["DE"].tax_areas == ()


def test_cli_reads_the_provinces_of_the_shipping_zones(
    tmp_path: Path,
    shopify_double: ShopifyDouble,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Only the provinces the store's zones list; a shipping country outside the zones
    gets ISO's."""
    seed_store(shopify_double.store, {"shop": {
        "ships_to_countries": ["US", "MX"],
        "shipping_zones": [
            {"name": "Home", "countries": [{"code": "US", "provinces": ["CA", "NY", "TX"]}]}],
    }})
    monkeypatch.setenv("CUSTSYNC_TEST_TOKEN", shopify_double.token or "shpat_test")
    path = _config(tmp_path, shopify_double.url)
    assert main(["countries", "init", "--config", str(path), "--shop", "main"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "US: setup kept (2 rows); 2 county rows added from store" in out
    assert "MX: setup added; 32 county rows added from ISO 3166-2" in out
    us = require_config(path).shop("main").country_setups["US"]
    assert [(t.county_code, t.county) for t in us.tax_areas] == [
        ("CA", "California"), ("NV", "Nevada State"), ("NY", "New York"), ("TX", "Texas")]
