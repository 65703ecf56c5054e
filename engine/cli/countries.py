"""`custsync countries init`: add per-country setups with their provinces to the config file.

For every country the shop ships to (or each ``--country``), a setup under the shop's
``countries:`` in custsync.yaml, with the provinces as county rows (tax area code blank).
Provinces come from the store when it is reachable (``--from-store`` insists), else from
ISO 3166-2 (``--from-iso`` skips the store). Existing setups and rows are kept; the file keeps
its comments and layout. Exit codes: 0 ok, 1 error, 64 usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import exitcodes
from ..errors import ConfigError, CustsyncError, UsageError
from ..run.countries import (
    CountriesReport,
    CountryProvinces,
    check_iso_codes,
    from_iso,
    init_config_countries,
    store_provinces,
)

DEFAULT_CONFIG = "custsync.yaml"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "countries",
        help="initialise per-country setups (provinces as county rows) in the config",
        description="Manage the per-country setups of a shop in the config file.",
    )
    commands = parser.add_subparsers(dest="countries_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda args: _usage(parser))

    init = commands.add_parser(
        "init",
        help="add a setup for every country the shop ships to, with its provinces",
        description=(
            "Add a per-country setup for every country the shop ships to, each with its "
            "provinces as county rows (county, county_code; tax_area_code blank), to the "
            "shop's countries: in the config file. Provinces come from the store when it is "
            "reachable, else from ISO 3166-2. Existing setups and rows are never changed. "
            "Exit codes: 0 ok, 1 error, 64 usage."
        ),
    )
    init.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"configuration file to update (default: ./{DEFAULT_CONFIG})",
    )
    init.add_argument("--shop", metavar="SHOP", help="the shop (needed when there are several)")
    source = init.add_mutually_exclusive_group()
    source.add_argument(
        "--from-store",
        action="store_true",
        help="read countries and provinces from the store; fail when it is not reachable",
    )
    source.add_argument(
        "--from-iso",
        action="store_true",
        help="do not contact the store; provinces from ISO 3166-2 (needs --country, or "
        "completes the countries already set up)",
    )
    init.add_argument(
        "--country",
        metavar="CODE",
        action="append",
        default=[],
        help="set up this ISO 3166-1 alpha-2 country (repeatable) instead of the shipping ones",
    )
    init.add_argument(
        "--dry-run", action="store_true", help="show what would be added; do not write"
    )
    init.set_defaults(handler=_init)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exitcodes.USAGE


def _init(args: argparse.Namespace) -> int:
    from ..config import config_file, require_config

    path = config_file(args.config or DEFAULT_CONFIG)
    codes = [code.strip().upper() for code in args.country]
    bad = check_iso_codes(codes)
    if bad:
        raise UsageError(f"--country {', '.join(bad)}: not an ISO 3166-1 alpha-2 country code")

    shop = require_config(path).shop(args.shop)
    known = sorted(shop.country_setups)
    countries: list[CountryProvinces]
    if args.from_iso:
        if not (codes or known):
            raise UsageError(
                "--from-iso does not read the store's shipping countries: give --country CODE"
            )
        countries = from_iso(codes or known)
    else:
        try:
            countries = _from_store(shop, codes)
        except CustsyncError as exc:
            if args.from_store:
                raise ConfigError(
                    f"the store of shop {shop.name} is not reachable: {exc.render()}"
                ) from None
            if not (codes or known):
                raise ConfigError(
                    f"the store of shop {shop.name} is not reachable ({exc.render()}) and no "
                    "countries are set up yet: give --country CODE"
                ) from None
            print(
                f"custsync: note: the store is not reachable ({exc.render()}); "
                "provinces from ISO 3166-2",
                file=sys.stderr,
            )
            countries = from_iso(codes or known)
    report = init_config_countries(path, shop.name, countries, write=not args.dry_run)
    _print(report, args.dry_run)
    return exitcodes.OK


def _from_store(shop: Any, codes: list[str]) -> list[CountryProvinces]:
    from ..run.sync import open_shopify_reader_for

    reader = open_shopify_reader_for(shop)
    notes: list[str] = []
    try:
        countries = store_provinces(reader, codes or None, notes)
    finally:
        reader.close()
    for note in notes:
        print(f"custsync: note: {note}", file=sys.stderr)
    return countries


def _print(report: CountriesReport, dry_run: bool) -> None:
    verb = "would add" if dry_run else "added"
    for result in report.results:
        source = "store" if result.source == "store" else "ISO 3166-2"
        if result.added_setup:
            what = f"setup {verb}"
        elif result.added_rows:
            what = f"setup kept ({result.kept_rows} rows)"
        else:
            print(f"{result.iso_code}: kept ({result.kept_rows} rows, nothing to add)")
            continue
        rows = len(result.added_rows)
        counties = f"{rows} county row{'s' if rows != 1 else ''} {verb} from {source}"
        print(f"{result.iso_code}: {what}; {counties if rows else 'no provinces'}")
    if not report.changed:
        print(f"{report.path}: shop {report.shop}: nothing to add")
    elif report.written:
        print(f"{report.path}: shop {report.shop} updated")
    else:
        print(f"{report.path}: shop {report.shop}: dry run, not written")
