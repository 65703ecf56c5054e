"""An incremental run reads only what the changes can touch, and decides exactly as a run that
reads everything would."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from custsync.connectors.erp_sql import open_reader, open_writer
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.cli.demo_data import generate
from custsync.engine.config import require_config
from custsync.engine.decide.engine import Engine
from custsync.engine.model import Direction, ErpCustomer
from custsync.engine.rules.validate import require_rule_set
from custsync.engine.run.plan import plan_to_dict
from custsync.engine.run.planner import plan_incremental
from custsync.engine.run.state import open_store
from custsync.engine.run.sync import open_shopify_reader_for, shop_context

from sync_world import make_erp, write_config


class _ReadsEverything:
    """The same ERP reader without the candidate lookup: forces a full read."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.full_reads = 0

    def iter_customers(self, changed_since: datetime | None = None) -> Iterator[ErpCustomer]:
        if changed_since is None:
            self.full_reads += 1
        return self._inner.iter_customers(changed_since)

    def __getattr__(self, name: str) -> Any:
        if name == "candidates":
            raise AttributeError(name)
        return getattr(self._inner, name)


class _CountingReader(_ReadsEverything):
    def candidates(self, **keys: Any) -> Any:
        return self._inner.candidates(**keys)


def test_incremental_read_decides_like_a_full_read(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    rng = random.Random(5)
    world = generate(n_erp=160, seed=3)
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url, [replace(c, county="") for c in world.erp_customers])
    seed_from_models(shopify_double, world.shopify_customers)
    config_path = write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        token=shopify_double.token,
        settings={
            "customer_import": "all_customers",
            "auto_create_unknown_customers": True,
            "customer_template_code": "RETAIL",
            "export_customers": True,
            "can_update_shopify_customers": True,
        },
    )
    assert main(["sync", "-c", str(config_path), "--no-progress"]) in (
        exitcodes.OK,
        exitcodes.PARTIAL,
    )

    # changes on both sides, some of them creating new matches between unlinked records
    erp = open_writer(erp_url)
    try:
        customers = list(erp.iter_customers())
        for customer in rng.sample(customers, 12):
            assert erp.update_customer(customer.no, {"city": "Haarlem"}).ok
        for customer in rng.sample(customers, 4):
            assert erp.update_customer(customer.no, {"phone": "+31 20 555 0101"}).ok
    finally:
        erp.close()
    stored = shopify_double.store.customers()
    for record in rng.sample(stored, 10):
        shopify_double.store.update_customer(record["id"], {"note": "changed"})
    erp = open_writer(erp_url)
    try:  # a new ERP customer, and the same person signing up in the shop (e-mail match)
        assert erp.create_customer(
            {"name": "Mia Match", "email": "mia.match@example.com", "country_code": "NL"},
            "RETAIL",
            "test:new",
        ).ok
    finally:
        erp.close()
    new_records: list[dict[str, Any]] = [
        {
            "firstName": "Mia",
            "lastName": "Match",
            "email": "MIA.MATCH@example.com",
            "addresses": [
                {"address1": "Dam 1", "city": "Amsterdam", "zip": "1012 JS", "countryCode": "NL"}
            ],
        }
    ]
    # an unchanged ERP customer that never reached Shopify (bad e-mail) signs up with the
    # same phone: only the candidate lookup by phone can find it
    unexported = next(
        c for c in customers if "(at)" in c.email and c.phone.startswith("+") and len(c.phone) > 9
    )
    new_records.append(
        {
            "firstName": "Phone",
            "lastName": "Match",
            "email": "phone.match@example.com",
            "phone": unexported.phone,
            "addresses": [
                {"address1": "Dam 2", "city": "Amsterdam", "zip": "1012 JS", "countryCode": "NL"}
            ],
        }
    )
    shopify_double.store.load(new_records)

    config = require_config(config_path)
    shop_config = config.shops[0]
    engine = Engine(require_rule_set([]))
    state = open_store(config.state_url)
    try:
        cursors = {d.value: state.cursor("main", d.value) for d in Direction if d.value != "order"}
        assert all(cursors.values())
        plans = {}
        for name, wrapper in (("narrow", _CountingReader), ("full", _ReadsEverything)):
            reader = wrapper(open_reader(erp_url))
            shopify = open_shopify_reader_for(shop_config)
            try:
                plan, inputs = plan_incremental(
                    shop_context(shop_config),
                    engine=engine,
                    erp=reader,  # type: ignore[arg-type]
                    shopify=shopify,
                    link_source=state,
                    cursors=cursors,
                    directions=(Direction.IMPORT, Direction.EXPORT),
                )
            finally:
                shopify.close()
            plans[name] = (plan_to_dict(plan)["decisions"], reader.full_reads, inputs)
    finally:
        state.close()

    narrow, narrow_full_reads, narrow_inputs = plans["narrow"]
    full, full_reads, full_inputs = plans["full"]
    assert narrow_full_reads == 0 and full_reads == 1
    assert len(narrow_inputs.world.erp) < len(full_inputs.world.erp)
    assert len(narrow) >= 20
    assert narrow == full
    methods = {
        d["label"].split(" <")[0]: d["payload"].get("match_method")
        for d in narrow
        if d["direction"] == "import"
    }
    assert methods["Mia Match"] == "email"
    assert methods["Phone Match"] in ("phone_e164", "phone_digits")
