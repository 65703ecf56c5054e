"""`custsync attention list|show|retry|resolve|unlink`: records that need a person.

A record that failed ``park_after`` runs in a row (``schedule.park_after``, default 3), or
whose failure cannot go away by trying again (a link conflict, values the target refuses), is
*parked*: it no longer holds its direction's cursor, so the rest of the shop keeps syncing. It
comes back by itself when its record changes (the next run reads it as changed) and goes off
the list when it succeeds. ``retry`` makes the next run read it whatever the cursor says;
``resolve`` takes it off the list (it comes back if it fails again); ``unlink`` drops a
Shopify customer's link so the next run matches it afresh. Exit codes: 0 ok, 1 error,
64 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import exitcodes
from ..errors import UsageError
from ..masking import mask_text, terminal_safe
from .options import add_output_option
from .schedule import add_config_options, load_config, open_state, state_url_of

FORMAT_VERSION = "1.0"
DIRECTIONS = ("import", "export")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "attention",
        help="records that keep failing: list, show, retry, resolve, unlink",
        description=(
            "Records parked after failing repeatedly (or for good) no longer hold the "
            "cursor; they wait here for their record to change, a retry or a person."
        ),
    )
    commands = parser.add_subparsers(dest="attention_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda args: _usage(parser))

    listing = commands.add_parser(
        "list",
        help="the records on the list",
        description="The failing and parked records. Exit codes: 0 ok, 1 error, 64 usage.",
    )
    add_config_options(listing)
    listing.add_argument("--shop", metavar="SHOP", help="only this shop")
    listing.add_argument("--direction", choices=DIRECTIONS, help="only this direction")
    listing.add_argument(
        "--status", choices=("failing", "parked"), help="only failing (still holding the "
        "cursor) or parked records"
    )
    add_output_option(listing)
    listing.set_defaults(handler=_list)

    for name, text in (
        ("show", "one record with its reason, rules, versions and attempts"),
        ("retry", "read and decide the record again in the next run, whatever the cursor says"),
        ("resolve", "take the record off the list (it comes back if it fails again)"),
    ):
        command = commands.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]}."
                                      " Exit codes: 0 ok, 1 error, 64 usage.")
        add_config_options(command)
        command.add_argument("record", metavar="ID",
                             help="the record: a Shopify customer id (import) or an ERP number "
                             "(export)")
        command.add_argument("--shop", metavar="SHOP", help="the shop (needed when there are "
                             "several)")
        command.add_argument("--direction", choices=DIRECTIONS,
                             help="the direction (needed when the record is listed in both)")
        if name == "show":
            add_output_option(command)
        command.set_defaults(handler={"show": _show, "retry": _retry, "resolve": _resolve}[name])

    unlink = commands.add_parser(
        "unlink",
        help="drop a Shopify customer's link so the next run matches it afresh",
        description=(
            "Drop the link (and address links) of a Shopify customer, e.g. the other customer a "
            "linked-to-another skip names, and ask for a retry of the records on the list that "
            "name it. Exit codes: 0 ok, 1 error, 64 usage."
        ),
    )
    add_config_options(unlink)
    unlink.add_argument("shopify_id", metavar="ID",
                        help="the Shopify customer (gid://shopify/Customer/N or N)")
    unlink.add_argument("--shop", metavar="SHOP", help="the shop (needed when there are several)")
    unlink.set_defaults(handler=_unlink)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exitcodes.USAGE


def _open(args: argparse.Namespace, *, read_only: bool) -> tuple[Any, Any, str | None]:
    """The config, the state store and the shop asked for (None: every shop)."""
    config = load_config(args.config)
    shop = getattr(args, "shop", None)
    if shop is not None:
        config.shop(shop)  # an unknown shop is a usage error naming the configured ones
    return config, open_state(state_url_of(config, args.state_url), read_only=read_only), shop


def _list(args: argparse.Namespace) -> int:
    _config, state, shop = _open(args, read_only=True)
    try:
        records = state.attention(shop, direction=args.direction, status=args.status)
    finally:
        state.close()
    if args.output == "json":
        print(json.dumps({"format_version": FORMAT_VERSION,
                          "records": [_json(r) for r in records]}, indent=2))
        return exitcodes.OK
    if not records:
        print("Nothing needs attention.")
        return exitcodes.OK
    for r in records:
        retry = ", retry asked" if r.retry else ""
        print(f"{r.status:<8} {r.shop}/{r.direction} {terminal_safe(r.record)} "
              f"{terminal_safe(r.label)}  {r.failures} failure(s){retry}: "
              f"{terminal_safe(mask_text(r.reason))[:200]}")
    parked = sum(1 for r in records if r.status == "parked")
    print(f"{len(records)} record(s), {parked} parked")
    return exitcodes.OK


def _find(args: argparse.Namespace, state: Any, shop: str | None) -> Any:
    found = [r for r in state.attention(shop, direction=args.direction) if r.record == args.record]
    if not found:
        raise UsageError(f"{args.record!r} is not on the attention list"
                         + (f" of shop {shop}" if shop else ""))
    if len(found) > 1:
        raise UsageError(f"{args.record!r} is listed in several shops or directions: give "
                         "--shop and --direction")
    return found[0]


def _show(args: argparse.Namespace) -> int:
    _config, state, shop = _open(args, read_only=True)
    try:
        record = _find(args, state, shop)
    finally:
        state.close()
    if args.output == "json":
        print(json.dumps({"format_version": FORMAT_VERSION, **_json(record)}, indent=2))
        return exitcodes.OK
    for key, value in _json(record).items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key + ':':<17} {terminal_safe(str(shown if shown is not None else '-'))}")
    return exitcodes.OK


def _retry(args: argparse.Namespace) -> int:
    _config, state, shop = _open(args, read_only=False)
    try:
        record = _find(args, state, shop)
        state.request_retry(record.shop, record.direction, record.record)
    finally:
        state.close()
    print(f"{record.shop}/{record.direction} {terminal_safe(record.record)}: the next run reads "
          "it again")
    return exitcodes.OK


def _resolve(args: argparse.Namespace) -> int:
    _config, state, shop = _open(args, read_only=False)
    try:
        record = _find(args, state, shop)
        state.resolve_attention(record.shop, record.direction, record.record)
    finally:
        state.close()
    print(f"{record.shop}/{record.direction} {terminal_safe(record.record)}: off the list")
    return exitcodes.OK


def _unlink(args: argparse.Namespace) -> int:
    config, state, shop = _open(args, read_only=False)
    shop = shop or (config.shops[0].name if len(config.shops) == 1 else None)
    if shop is None:
        state.close()
        raise UsageError("give --shop: the config has several shops")
    gid = args.shopify_id.strip()
    if gid.isdigit():
        gid = f"gid://shopify/Customer/{gid}"
    try:
        link = state.link_for_shopify(shop, gid)
        if link is None:
            raise UsageError(f"Shopify customer {gid} is not linked in shop {shop}")
        state.drop_link(shop, gid)
        for record in state.attention(shop):
            if record.record in (gid, link.erp_no) or gid in record.reason:
                state.request_retry(record.shop, record.direction, record.record)
    finally:
        state.close()
    print(f"{shop}: unlinked {gid} from ERP customer {link.erp_no}; the next run matches it "
          "afresh")
    return exitcodes.OK


def _json(r: Any) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "shop": r.shop,
        "direction": r.direction,
        "record": r.record,
        "label": r.label,
        "status": r.status,
        "failures": r.failures,
        "permanent": r.permanent,
        "reason": mask_text(r.reason),
        "rules": list(r.rules),
        "source_version": r.source_version or None,
        "target_version": r.target_version or None,
        "first_failed_at": iso(r.first_failed_at),
        "last_failed_at": iso(r.last_failed_at),
        "parked_at": iso(r.parked_at),
        "last_run_id": r.last_run_id,
        "retry": r.retry,
    }
