"""Reading customers, orders and shipping countries (implements ``ShopifyReader``).

This class has no method that writes: ``custsync plan`` only ever gets one of these. The
only GraphQL *mutation* it may send is ``bulkOperationRunQuery`` for a large full read, which
starts a read-only export job and changes no store data (``bulk_reads="never"`` turns it off).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from custsync.engine.errors import ConfigError, mask_email
from custsync.engine.model import ShopifyCustomer, ShopifyOrder
from custsync.engine.ports import ReadProgress, SourceProblem

from . import documents as docs
from .bulk import BulkRunner, BulkSettings
from .client import GraphQLClient, QueryTooCostly
from .mapping import BadRecord, format_datetime, parse_customer, parse_order

log = logging.getLogger("custsync.shopify")

MAX_PAGE_SIZE = 250
#: customers between two progress reports while a bulk result is read
_REPORT_EVERY = 1000
_LOOKUP_MODES = ("identifier", "search")
_BULK_MODES = ("auto", "always", "never")
#: delivery profiles per ``DeliveryZones`` page: with up to 100 zones per location group, one
#: profile is about 500 points of requested cost; Shopify refuses a query over 1000
_PROFILES_PER_PAGE = 1


def normalise_phone(value: str) -> str:
    """``+`` (when leading) and digits only: ``+1 (415) 555-0100`` -> ``+14155550100``."""
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    return ("+" + digits) if text.startswith("+") and digits else digits


def _search_literal(value: str) -> str:
    """A quoted phrase for Shopify search syntax (exact-phrase match on tokenised fields)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ShopifyGraphQLReader:
    """Reads one shop through the GraphQL Admin API.

    ``page_size``: customers per page (1..250; halved automatically when Shopify answers
    MAX_COST_EXCEEDED). ``lookup``: ``identifier`` (``customerByIdentifier``: exact and not
    behind the search index) or ``search`` (``customers(query:)``, re-checked exactly).
    ``bulk_reads``: ``auto`` uses a bulk operation for reads of at least ``bulk_threshold``
    customers, ``always`` / ``never`` force it.
    """

    def __init__(
        self,
        client: GraphQLClient,
        *,
        page_size: int = MAX_PAGE_SIZE,
        lookup: str = "identifier",
        bulk_reads: str = "auto",
        bulk_threshold: int = 5000,
        bulk_settings: BulkSettings | None = None,
    ) -> None:
        if not 1 <= int(page_size) <= MAX_PAGE_SIZE:
            raise ConfigError(f"Shopify page_size must be 1..{MAX_PAGE_SIZE}, not {page_size}")
        if lookup not in _LOOKUP_MODES:
            raise ConfigError(f"Shopify lookup must be one of {', '.join(_LOOKUP_MODES)}")
        if bulk_reads not in _BULK_MODES:
            raise ConfigError(f"Shopify bulk_reads must be one of {', '.join(_BULK_MODES)}")
        self.client = client
        self.page_size = int(page_size)
        self.lookup = lookup
        self.bulk_reads = bulk_reads
        self.bulk_threshold = int(bulk_threshold)
        self.bulk = BulkRunner(client, bulk_settings)
        self._problems: list[SourceProblem] = []
        self._watch: Callable[[ReadProgress], None] | None = None
        self._expected: int | None = None  # customers the count before a paged read found

    # -- ReportsReadProgress -----------------------------------------------------------------

    def watch_reads(self, callback: Callable[[ReadProgress], None] | None) -> None:
        """Tell ``callback`` how reads of all customers come along: pages and customers
        read, a bulk job's object count, result lines downloaded, customers read from it."""
        self._watch = callback

    def _tell(self, step: str, done: int, total: int | None = None, note: str = "") -> None:
        if self._watch is not None:
            self._watch(ReadProgress(step, done, "customers", total, note))

    # -- ReportsProblems ---------------------------------------------------------------------

    def problems(self) -> Sequence[SourceProblem]:
        """Customers and orders that could not be read (skipped, with the reason)."""
        return tuple(self._problems)

    def _problem(self, kind: str, exc: BadRecord, where: str) -> None:
        log.warning("Shopify %s skipped (%s): %s", kind, exc.record or "?", exc)
        self._problems.append(
            SourceProblem(kind=kind, location=where, message=str(exc), record=exc.record)
        )

    def _customer(self, node: Any, where: str, extra: Sequence[Any] = ()) -> ShopifyCustomer | None:
        try:
            return parse_customer(node, extra)
        except BadRecord as exc:
            if not exc.record and isinstance(node, Mapping):
                exc.record = str(node.get("id") or "")
            self._problem("shopify_customer", exc, where)
            return None

    # -- customers ---------------------------------------------------------------------------

    def iter_customers(self, updated_since: datetime | None = None) -> Iterator[ShopifyCustomer]:
        """All customers, or those updated at or after ``updated_since``.

        Paged reads come oldest update first (``sortKey: UPDATED_AT``); a bulk read comes in
        Shopify's file order. Every customer is yielded once.
        """
        if updated_since is not None:
            if updated_since.tzinfo is None:
                updated_since = updated_since.replace(tzinfo=UTC)
            # Shopify's updatedAt has whole seconds: keep the cursor's second itself
            updated_since = updated_since.replace(microsecond=0)
        # Shopify compares whole seconds: ask from one second earlier and re-check exactly,
        # so a customer updated in the same second as the cursor is not lost.
        search = (
            f"updated_at:>'{format_datetime(updated_since - timedelta(seconds=1))}'"
            if updated_since
            else None
        )
        if self._use_bulk(search):
            yield from self._iter_bulk(search, updated_since)
        else:
            yield from self._iter_pages(search, updated_since)

    def count_customers(self, search: str | None = None, limit: int | None = None) -> int:
        data = self.client.execute(docs.CUSTOMERS_COUNT, {"query": search, "limit": limit}).data
        node = data.get("customersCount") or {}
        return int(node.get("count") or 0)

    def _use_bulk(self, search: str | None) -> bool:
        self._expected = None
        if self.bulk_reads != "auto":
            return self.bulk_reads == "always"
        count = self.count_customers(search, limit=self.bulk_threshold)
        use = count >= self.bulk_threshold
        self._expected = None if use else count
        log.info(
            "Shopify customers to read: %s%d -> %s",
            ">=" if use else "",
            count,
            "bulk operation" if use else "pages",
        )
        return use

    def _iter_pages(self, search: str | None, since: datetime | None) -> Iterator[ShopifyCustomer]:
        first = self.page_size
        after: str | None = None
        seen: set[str] = set()
        page = 0
        self._tell("customers (pages)", 0, self._expected)
        while True:
            try:
                response = self.client.execute(
                    docs.CUSTOMERS_PAGE, {"first": first, "after": after, "query": search}
                )
            except QueryTooCostly:
                if first == 1:
                    raise
                first = max(1, first // 2)
                log.warning("Shopify customers page too costly; page size now %d", first)
                continue
            page += 1
            connection = response.data.get("customers") or {}
            for node in connection.get("nodes") or []:
                customer = self._customer(node, f"customers page {page}")
                if customer is None or customer.id in seen:
                    continue
                if (
                    since is not None
                    and customer.updated_at is not None
                    and (customer.updated_at < since)
                ):
                    continue  # Shopify's date search is coarse: re-check exactly
                seen.add(customer.id)
                yield customer
            self._tell(
                "customers (pages)", len(seen), self._expected, f"{page} page{'s' * (page != 1)}"
            )
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                log.info("Shopify customers: %d read in %d pages", len(seen), page)
                return
            after = str(info["endCursor"])

    def _iter_bulk(self, search: str | None, since: datetime | None) -> Iterator[ShopifyCustomer]:
        count = 0
        roots = self.bulk.run_query(docs.bulk_customers_query(search), watch=self._watch)
        for number, (root, children) in enumerate(roots):
            if number % _REPORT_EVERY == 0:
                self._tell("customers (bulk result)", count)
            customer = self._customer(root, "bulk customers export", children)
            if customer is None:
                continue
            if (
                since is not None
                and customer.updated_at is not None
                and (customer.updated_at < since)
            ):
                continue
            count += 1
            yield customer
        self._tell("customers (bulk result)", count)
        log.info("Shopify customers: %d read by bulk operation", count)

    def get_customer(self, customer_id: str) -> ShopifyCustomer | None:
        data = self.client.execute(docs.CUSTOMER_BY_ID, {"id": customer_id}).data
        node = data.get("customer")
        return self._customer(node, f"customer {customer_id}") if node else None

    def get_customers(self, customer_ids: Iterable[str]) -> dict[str, ShopifyCustomer | None]:
        """The customers with these ids, by id (``None`` for one the shop does not have), read
        ``page_size`` ids a request (``nodes(ids:)``; Shopify takes at most 250). A request
        Shopify finds too costly is sent again with half as many ids."""
        wanted = list(dict.fromkeys(customer_ids))
        found: dict[str, ShopifyCustomer | None] = {}
        size = self.page_size
        start = 0
        while start < len(wanted):
            chunk = wanted[start : start + size]
            try:
                data = self.client.execute(docs.CUSTOMERS_BY_IDS, {"ids": chunk}).data
            except QueryTooCostly:
                if size == 1:
                    raise
                size = max(1, size // 2)
                log.warning("Shopify customers by id too costly; %d ids a request now", size)
                continue
            nodes = list(data.get("nodes") or [])
            nodes += [None] * (len(chunk) - len(nodes))
            for gid, node in zip(chunk, nodes, strict=False):
                # a node of another type (an id that is not a customer's) comes back empty
                has_id = isinstance(node, Mapping) and node.get("id")
                found[gid] = self._customer(node, f"customer {gid}") if has_id else None
            start += len(chunk)
        return found

    def find_by_email(self, email: str) -> ShopifyCustomer | None:
        """The customer whose e-mail equals ``email`` ignoring case and surrounding spaces."""
        wanted = email.strip().lower()
        if not wanted:
            return None
        if self.lookup == "identifier":
            candidates = self._by_identifier({"emailAddress": wanted})
        else:
            candidates = self.search_customers(f"email:{_search_literal(wanted)}")
        for customer in candidates:
            if customer.email.strip().lower() == wanted:
                return customer
        log.debug("Shopify: no customer with e-mail %s", mask_email(wanted))
        return None

    def find_by_phone(self, phone_e164: str) -> ShopifyCustomer | None:
        """The customer whose phone equals ``phone_e164`` (``+`` and digits compared)."""
        wanted = normalise_phone(phone_e164)
        if not wanted:
            return None
        if self.lookup == "identifier":
            candidates = self._by_identifier({"phoneNumber": wanted})
        else:
            candidates = self.search_customers(f"phone:{wanted}")
        for customer in candidates:
            if customer.phone and normalise_phone(customer.phone) == wanted:
                return customer
        return None

    def _by_identifier(self, identifier: Mapping[str, str]) -> list[ShopifyCustomer]:
        data = self.client.execute(docs.CUSTOMER_BY_IDENTIFIER, {"identifier": dict(identifier)})
        node = data.data.get("customerByIdentifier")
        customer = self._customer(node, "customerByIdentifier") if node else None
        return [customer] if customer else []

    def search_customers(self, query: str, first: int = 10) -> list[ShopifyCustomer]:
        """Raw ``customers(query:)`` search: tokenised and behind recent writes."""
        data = self.client.execute(docs.CUSTOMERS_SEARCH, {"query": query, "first": first}).data
        nodes = (data.get("customers") or {}).get("nodes") or []
        found = (self._customer(node, "customer search") for node in nodes)
        return [customer for customer in found if customer is not None]

    # -- orders and shop ---------------------------------------------------------------------

    def get_order(self, order_id: str) -> ShopifyOrder | None:
        data = self.client.execute(docs.ORDER_BY_ID, {"id": order_id}).data
        node = data.get("order")
        if not node:
            return None
        try:
            return parse_order(node)
        except BadRecord as exc:
            self._problem("order", exc, f"order {order_id}")
            return None

    def shipping_countries(self) -> Sequence[str]:
        """ISO codes of the countries the shop ships to, sorted."""
        data = self.client.execute(docs.SHOP_SHIPPING_COUNTRIES).data
        codes = (data.get("shop") or {}).get("shipsToCountries") or []
        return sorted({str(code).upper() for code in codes if code and len(str(code)) == 2})

    def shipping_provinces(self) -> Mapping[str, tuple[tuple[str, str], ...]]:
        """Provinces (code, name) per shipping-zone country, from the delivery profiles.

        Needs the ``read_shipping`` scope. Countries without provinces map to ``()``;
        "rest of world" zones are left out.
        """
        result: dict[str, dict[str, str]] = {}
        after: str | None = None
        while True:
            variables = {"first": _PROFILES_PER_PAGE, "after": after}
            data = self.client.execute(docs.DELIVERY_ZONES, variables).data
            connection = data.get("deliveryProfiles") or {}
            for profile in connection.get("nodes") or []:
                for group in profile.get("profileLocationGroups") or []:
                    zones = (group.get("locationGroupZones") or {}).get("nodes") or []
                    for zone_node in zones:
                        for country in (zone_node.get("zone") or {}).get("countries") or []:
                            code = (country.get("code") or {}).get("countryCode")
                            if not code:
                                continue
                            provinces = result.setdefault(str(code).upper(), {})
                            for province in country.get("provinces") or []:
                                if province.get("code"):
                                    provinces[str(province["code"])] = str(
                                        province.get("name") or ""
                                    )
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                break
            after = str(info["endCursor"])
        return {iso: tuple(sorted(provinces.items())) for iso, provinces in sorted(result.items())}

    def close(self) -> None:
        self.client.close()
