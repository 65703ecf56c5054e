"""``custsync orders map``: which ERP customer gets a Shopify order (behaviour.md §4).

Resolves the sell-to / bill-to customer of orders fetched from the store by id, or read from a
file, creates (or links) the customer when the rules say so, records the links, and prints
which rule decided. ``--dry-run`` only shows the decisions.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack, closing
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .. import exitcodes
from ..errors import ConfigError
from ..run.schedule import ShopBusy, shop_lease
from .lease import add_lease_ttl_option, unreleased_lease
from .options import add_output_option, order_gid


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("orders", help="map Shopify orders to ERP customers")
    commands = group.add_subparsers(dest="orders_command", metavar="SUBCOMMAND")
    parser = commands.add_parser(
        "map",
        help="resolve the sell-to / bill-to ERP customer of Shopify orders",
        description=(
            "Resolve the ERP sell-to / bill-to customer of Shopify orders (by id from the "
            "store, or from a YAML/JSON/JSON Lines file), creating the customer when the "
            "rules say so, and print which rule decided."
        ),
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default="custsync.yaml",
        help="configuration file (default: ./custsync.yaml)",
    )
    parser.add_argument(
        "--shop", metavar="SHOP", help="the shop (default: the first configured shop)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--order", metavar="ID", action="append", help="order id or gid (repeatable)"
    )
    source.add_argument(
        "--file",
        metavar="FILE",
        help="orders in a YAML, JSON or JSON Lines file (the orders.yaml format of "
        "docs/plan.md, 'A world kept in files')",
    )
    parser.add_argument(
        "--rules",
        metavar="DIR",
        action="append",
        default=[],
        help="user rule folder applied over the shipped rules (repeatable; after the config's)",
    )
    parser.add_argument("--dry-run", action="store_true", help="decide only; write nothing")
    add_lease_ttl_option(parser)
    add_output_option(parser)
    parser.set_defaults(handler=_run)
    group.set_defaults(handler=lambda args: _usage(group))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return exitcodes.USAGE


def _load_orders(args: argparse.Namespace, reader: Any) -> tuple[list[Any], list[str]]:
    problems: list[str] = []
    if args.file:
        loaded = _files_connector().load_orders(args.file)
        problems = [f"{p.location}: {p.message}" for p in loaded.problems]
        return list(loaded.records), problems
    orders = []
    for order_id in args.order:
        order = reader.get_order(order_gid(order_id))
        if order is None:
            problems.append(f"order {order_id}: not found in the shop")
        else:
            orders.append(order)
    return orders, problems


def _files_connector() -> Any:
    found = entry_points(group="custsync.shopify_connectors", name="files")
    if not found:  # pragma: no cover - broken installation
        raise ConfigError("the files connector is not installed")
    return next(iter(found)).load()


def _dry_run_links(config: Any, shop: Any, problems: list[str]) -> list[Any]:
    """The links a dry run decides with, read as ``plan`` reads them and creating nothing: a
    files: shop's links file, else the state database's (none before the first run)."""
    from .plan import _folder_of, _is_files, _read_state

    if _is_files(shop.shopify_url):
        loaded = _files_connector().load_links(_folder_of(shop.shopify_url))
        problems.extend(f"{p.location}: link skipped: {p.message}" for p in loaded.problems)
        return list(loaded.records)
    links, _cursors = _read_state(config.state_url, [shop.name], [])
    return links


def _run(args: argparse.Namespace) -> int:
    from ..config import config_file, require_config
    from ..model import Action
    from ..registry import open_erp_reader, open_erp_writer
    from ..rules.validate import require_rule_set
    from ..run.schedule import StopToken, make_holder_id
    from ..run.state import open_store
    from ..run.sync import open_shopify_reader_for, open_shopify_writer_for, shop_context

    for order_id in args.order or ():
        order_gid(order_id)  # every id checked before anything is opened
    config_path = config_file(args.config)
    config = require_config(config_path)
    rules = require_rule_set([*config.rule_dirs, *map(Path, args.rules)])
    shop = config.select_shops([args.shop])[0] if args.shop else config.shops[0]
    context = shop_context(shop)
    problems: list[str] = []
    with ExitStack() as opened:
        state = stop = None
        holder = ""
        if args.dry_run:  # readers only, as `plan`: a files: world will do, nothing is created
            erp = opened.enter_context(
                closing(open_erp_reader(config.erp_url, **config.erp_options))
            )
            shopify = opened.enter_context(closing(open_shopify_reader_for(shop)))
            links = _dry_run_links(config, shop, problems)
        else:
            # the writers first: a read-only files: world or a missing token is reported
            # before a state database is created
            erp = opened.enter_context(
                closing(open_erp_writer(config.erp_url, **config.erp_options))
            )
            shopify = opened.enter_context(closing(open_shopify_writer_for(shop)))
            state = opened.enter_context(closing(open_store(config.state_url)))
            # the shop's lease from the links read to the last write, renewed while the
            # mapping lasts (as sync's): nothing else writes this shop's links meanwhile
            stop, holder = StopToken(), make_holder_id()
            try:
                fence = opened.enter_context(
                    shop_lease(
                        state, shop.name, holder, args.lease_ttl, stop, unreleased_lease
                    )
                )
            except ShopBusy as busy:
                print(f"custsync: {busy}; try later", file=sys.stderr)
                return exitcodes.LOCKED
            if fence is not None and hasattr(state, "fenced"):
                state = state.fenced(fence)  # a write after the lease was lost is refused
            links = list(state.links(shop.name))
        outcomes = _map(
            args, rules, shop, context, state, links, erp, shopify, problems, stop, holder
        )
    if not outcomes and not problems:
        print(f"custsync: {args.file or 'the orders given'}: no orders to map", file=sys.stderr)
    _print(outcomes, problems, args.output, dry_run=args.dry_run)
    unmapped = any(
        d.action is Action.SKIP or (o is not None and o.status == "failed") for d, o in outcomes
    )
    return exitcodes.ERROR if unmapped or problems else exitcodes.OK


def _map(
    args: argparse.Namespace,
    rules: Any,
    shop: Any,
    context: Any,
    state: Any,
    links: list[Any],
    erp: Any,
    shopify: Any,
    problems: list[str],
    stop: Any = None,
    holder: str = "",
) -> list[tuple[Any, Any]]:
    """Decide (and, without --dry-run, apply through ``state``) the orders; the outcomes
    (problems are added to ``problems``). ``stop`` set (the lease was lost): the orders not
    applied yet are left for another time."""
    from ..decide.engine import Engine
    from ..decide.world import World
    from ..model import Action, Direction
    from ..run.apply import Applier

    orders, found = _load_orders(args, shopify)
    problems.extend(found)
    world = World(erp.iter_customers(), erp.reference(), (), links)
    for index, order in enumerate(orders):
        customer = order.customer
        if customer is not None and not (customer.email or customer.addresses):
            # a file names the customer by id only: read it from the store
            fetched = shopify.get_customer(customer.id)
            if fetched is not None:
                customer = fetched
                orders[index] = replace(order, customer=fetched)
            else:
                # mapped without it, instead of as a customer "without an address"
                problems.append(
                    f"order {order.name or order.id}: Shopify customer {customer.id} is "
                    "not in the shop; mapped without a Shopify customer"
                )
                customer = None
                orders[index] = replace(order, customer=None)
        if customer is not None:
            world.add_shopify(customer)
    engine = Engine(rules)
    decisions = [engine.decide_order(world, context, order) for order in orders]
    outcomes: list[tuple[Any, Any]] = []
    run_id = None
    if not args.dry_run and any(d.action is not Action.SKIP for d in decisions):
        run_id = state.start_run(shop.name, Direction.ORDER.value, datetime.now(UTC), holder)
        applier = Applier(shop=shop.name, run_id=run_id, state=state, erp=erp, shopify=shopify)
        for decision in decisions:
            if stop is not None and stop.is_set():
                problems.append(
                    f"order {decision.record}: not mapped: {stop.reason}; map it again"
                )
                continue
            outcomes.append((decision, applier.apply(decision)))
        failed = sum(1 for _, o in outcomes if o.status == "failed")
        if stop is not None and stop.is_set():
            status, error = "abandoned", stop.reason
        elif failed:
            status = "partial" if failed < len(outcomes) else "failed"
            error = f"{failed} order(s) failed"
        else:
            status, error = "succeeded", ""
        state.finish_run(
            run_id, status, {"mapped": len(outcomes) - failed, "failed": failed}, error
        )
    else:
        outcomes = [(d, None) for d in decisions]
    return outcomes


def _customer_of(decision: Any, outcome: Any) -> str:
    if outcome is not None and outcome.erp_no:
        return str(outcome.erp_no)
    sell_to = decision.payload.get("sell_to") or decision.erp_no
    return str(sell_to) if sell_to else ""


#: the decisions of the order mapping itself; the other rules of an order decision are the
#: nested import's (which customer matched, which fields were kept)
_ORDER_DECISIONS = frozenset({"order_method", "order_fallback"})


def _rule_text(rule: Any) -> str:
    return f"{rule.decision}/{rule.id} ({rule.file}:{rule.line})"


def _deciding_rule(decision: Any) -> str | None:
    """The last order_method/order_fallback rule: the one that decided the mapping."""
    rule = next((r for r in reversed(decision.rules) if r.decision in _ORDER_DECISIONS), None)
    return _rule_text(rule) if rule is not None else None


def _print(
    outcomes: list[tuple[Any, Any]], problems: list[str], output: str, *, dry_run: bool
) -> None:
    rows = []
    for decision, outcome in outcomes:
        rules = [_rule_text(r) for r in decision.rules]
        rows.append(
            {
                "order": decision.record,
                "action": decision.action.value,
                "method": decision.payload.get("method", ""),
                "customer": _customer_of(decision, outcome),
                "status": outcome.status if outcome is not None else "planned",
                "reason": decision.message or (outcome.message if outcome is not None else ""),
                "decided_by": _deciding_rule(decision),
                "rules": rules,
            }
        )
    if output == "json":
        print(json.dumps({"orders": rows, "problems": problems}, indent=2))
        return
    for row in rows:
        target = row["customer"] or "(none)"
        verb = "would map" if dry_run else "mapped"
        if row["action"] == "skip" or row["status"] == "failed":
            print(f"! {row['order']}: not mapped: {row['reason']}")
        else:
            created = " (new customer)" if row["action"] == "create" else ""
            print(
                f"  {row['order']}: {verb} to sell-to/bill-to {target}{created} [{row['method']}]"
            )
        print(f"    decided by {row['decided_by'] or 'no rule'}")
    for problem in problems:
        print(f"! {problem}")
