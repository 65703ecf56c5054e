"""Dump every decision of a synthetic world, one ``repr`` per line, to compare engine versions.

    python bench/decisions.py --n 100000 --out /tmp/new.txt
    PYTHONPATH=/path/to/old/package python bench/decisions.py --n 100000 --out /tmp/old.txt
    cmp /tmp/old.txt /tmp/new.txt

The world is ``bench/evaluate.py``'s (same seed, same records) with some records made messier
(blank names and countries, extra blanks, extensions, several e-mails, address-only phones,
provinces by name only, companies) so more paths are taken; it is decided under several
shop settings (the benchmark's, then variants that take other paths: updates allowed both
ways, county by name, exports off, only linked customers imported) and, for the order
mapping, one order per tenth Shopify customer. A line holds the full ``repr`` of a Decision:
action, targets, changes, reason code, message, rules, payload (in its order), versions and
label, so any difference in what the engine decides shows up in a plain ``cmp``/``diff``.
Speed work on the engine must leave the output byte-identical.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import evaluate as bench  # the benchmark's world generator (this script's folder is on the path)
from custsync.engine.decide import ruletest
from custsync.engine.decide.engine import Engine
from custsync.engine.decide.world import World
from custsync.engine.model import ShopContext, ShopifyOrder, ShopSettings

#: the benchmark's settings, then variants taking the other branches of the shipped rules
VARIANTS: dict[str, dict[str, object]] = {
    "bench": {},
    "update-both-ways": {"can_update_shopify_customers": True, "send_invite_email": True},
    "county-by-name": {
        "county_source": "name",
        "name_source": "first_and_last_name",
        "name_2_source": "company_name",
        "contact_source": "last_name",
    },
    "exports-off-orders": {
        "export_customers": False,
        "customer_import": "with_order_import",
        "auto_create_unknown_customers": False,
        "default_customer_no": "C00000001",
    },
    "import-none-by-bill-to": {
        "customer_import": "none",
        "customer_mapping_type": "by_bill_to",
        "shopify_can_update_customers": False,
    },
}

_BENCH_SETTINGS = ShopSettings(
    customer_import="all_customers",
    auto_create_unknown_customers=True,
    shopify_can_update_customers=True,
    export_customers=True,
    customer_template_code="RETAIL",
)


def _messier(synthetic: bench.SyntheticWorld) -> None:
    """Every 7th ERP and 11th Shopify customer changed in one of a few ways (deterministic)."""
    for index in range(0, len(synthetic.erp), 7):
        customer = synthetic.erp[index]
        kind = (index // 7) % 6
        if kind == 0:
            changes = {"name": f"  {customer.name}   Ltd ", "contact": "", "name_2": "Sales"}
        elif kind == 1:
            changes = {"country_code": "", "county": "", "phone": f"{customer.phone} x12"}
        elif kind == 2:
            changes = {"email": f"{customer.email}; other{index}@example.com", "contact": "X"}
        elif kind == 3:
            changes = {"county": "California", "name": "", "name_2": "Solo Person"}
        elif kind == 4:
            changes = {"phone": "", "address_2": "Floor  2", "county": "cal"}
        else:
            # an unknown country, and the e-mail of the customer before (maybe linked elsewhere)
            changes = {"country_code": "XX", "email": synthetic.erp[index - 1].email.upper()}
        synthetic.erp[index] = dataclasses.replace(customer, **changes)  # type: ignore[arg-type]
    for index in range(0, len(synthetic.shopify), 11):
        shopify = synthetic.shopify[index]
        kind = (index // 11) % 4
        if not shopify.addresses:
            continue
        address = shopify.addresses[0]
        if kind == 0:
            address = dataclasses.replace(address, province_code="", company="Acme  Inc")
        elif kind == 1:
            address = dataclasses.replace(address, phone=shopify.phone or "+14155550100")
            shopify = dataclasses.replace(shopify, phone="")
        elif kind == 2:
            address = dataclasses.replace(address, first_name="", last_name="", default=False)
        else:
            address = dataclasses.replace(address, city=" " + "Long City Name " * 3)
        synthetic.shopify[index] = dataclasses.replace(shopify, addresses=(address,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True, help="file to write (one repr per line)")
    args = parser.parse_args(argv)
    synthetic = bench.generate(args.n, args.seed)
    _messier(synthetic)
    world = World(synthetic.erp, bench.reference(), synthetic.shopify, synthetic.links)
    engine = Engine(ruletest.load_rules())
    orders = [
        ShopifyOrder(
            id=f"gid://shopify/Order/{index}",
            name=f"#{1000 + index}",
            email=customer.email,
            phone=customer.phone,
            customer=customer if index % 3 else None,
            bill_to=customer.addresses[0] if customer.addresses else None,
            ship_to=customer.addresses[0] if customer.addresses and index % 2 else None,
        )
        for index, customer in enumerate(synthetic.shopify[::10])
    ]
    with open(args.out, "w", encoding="utf-8") as out:
        for variant, changes in VARIANTS.items():
            settings = dataclasses.replace(_BENCH_SETTINGS, **changes)  # type: ignore[arg-type]
            shop = ShopContext(bench.SHOP, settings, bench.country_setups())
            out.write(f"# {variant}\n")
            for customer in synthetic.shopify:
                out.write(f"{engine.decide_import(world, shop, customer)!r}\n")
            for erp_customer in synthetic.erp:  # every one, as the benchmark (plan_shop filters)
                out.write(f"{engine.decide_export(world, shop, erp_customer)!r}\n")
            for order in orders:
                out.write(f"{engine.decide_order(world, shop, order)!r}\n")
            for customer in synthetic.erp[::50]:  # named by a user: created even when off
                out.write(f"{engine.decide_export(world, shop, customer, requested=True)!r}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
