"""Writing customers (implements ``ShopifyWriter``).

Every Shopify ``userErrors`` entry becomes a per-record failure
(``ShopifyWriteResult(ok=False, errors=(message, ...))``), marked ``refused``: Shopify
validated the input and rejected it (an invalid or too long value, an e-mail or phone already
taken, a customer that no longer exists), so it is parked at once. ``customerCreate`` and
``customerUpdate`` answer with ``UserError`` (``field`` and ``message``, no ``code`` in the
Admin schema), and Shopify reports what may go away by itself differently (HTTP 429/5xx,
``THROTTLED``, a lost answer): such a record fails ``unreachable`` and is tried again by the
next run. Only :class:`~custsync.engine.errors.FatalError` (bad token, missing scope, invalid
document) propagates and stops the run.

Create exactly once: when the answer to a ``customerCreate`` is lost (timeout, dropped
connection, 5xx), the customer is looked up by e-mail, then phone (exact) before anything is
re-sent; a customer found is the one we created. Without an e-mail or phone to look for, the
create is reported as failed with an "outcome unknown" message rather than risked twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from functools import partial
from typing import Any

from custsync.engine.errors import RetriableError, mask_email
from custsync.engine.model import ShopifyAddress, ShopifyCustomer
from custsync.engine.ports import CustomerInput, ShopifyWriteResult

from . import documents as docs
from .bulk import LineResult
from .client import GraphQLClient, OutcomeUnknown
from .mapping import BadRecord, address_input, customer_input, parse_customer, user_error_messages
from .reader import ShopifyGraphQLReader

log = logging.getLogger("custsync.shopify")

_BULK_MODES = ("auto", "always", "never")
_TAKEN = "has already been taken"


def _failed(*errors: str, key: str = "", unreachable: bool = False) -> ShopifyWriteResult:
    return ShopifyWriteResult(ok=False, errors=tuple(errors), key=key, unreachable=unreachable)


def _refused(*errors: str, key: str = "") -> ShopifyWriteResult:
    """Shopify's userErrors: it rejects the record as it is (see the module's docstring)."""
    return ShopifyWriteResult(ok=False, errors=tuple(errors), key=key, refused=True)


def _same_address(stored: ShopifyAddress, sent: ShopifyAddress) -> bool:
    """Whether ``stored`` is the address ``sent`` created: the fields sent compare equal
    (trimmed, any case). A name left blank is not compared: Shopify fills it from the
    customer, so the stored one differs from what was sent."""

    def norm(x: ShopifyAddress, fields: tuple[str, ...]) -> tuple[str, ...]:
        return tuple((getattr(x, f) or "").strip().lower() for f in fields)

    fields: tuple[str, ...] = ("address1", "address2", "zip", "city", "country_code")
    fields += tuple(f for f in ("first_name", "last_name") if (getattr(sent, f) or "").strip())
    return norm(stored, fields) == norm(sent, fields)


class ShopifyGraphQLWriter(ShopifyGraphQLReader):
    """A reader that can also write. ``bulk_writes``: ``auto`` runs a bulk mutation for
    :meth:`bulk_create_customers` and :meth:`bulk_update_customers` batches of at least
    ``bulk_write_threshold`` customers; smaller batches are written one by one,
    ``concurrency`` requests in flight."""

    def __init__(
        self,
        client: GraphQLClient,
        *,
        bulk_writes: str = "auto",
        bulk_write_threshold: int = 250,
        concurrency: int = 4,
        **reader_options: object,
    ) -> None:
        super().__init__(client, **reader_options)  # type: ignore[arg-type]
        if bulk_writes not in _BULK_MODES:
            from custsync.engine.errors import ConfigError

            raise ConfigError(f"Shopify bulk_writes must be one of {', '.join(_BULK_MODES)}")
        if not 1 <= int(concurrency) <= 16:
            from custsync.engine.errors import ConfigError

            raise ConfigError(f"Shopify concurrency must be 1..16, not {concurrency}")
        self.bulk_writes = bulk_writes
        self.bulk_write_threshold = int(bulk_write_threshold)
        self.concurrency = int(concurrency)

    # -- create ------------------------------------------------------------------------------

    def create_customer(self, data: CustomerInput) -> ShopifyWriteResult:
        variables = {"input": customer_input(data, with_address=True)}
        label = mask_email(data.email or "") or "(no e-mail)"
        unknown = ""
        for attempt in range(1, self.client.retry.max_attempts + 1):
            try:
                response = self.client.execute(docs.CUSTOMER_CREATE, variables)
            except OutcomeUnknown as exc:
                unknown = exc.message
                log.warning("Shopify customerCreate %s: %s; looking it up", label, exc.message)
                found, checked = self._find_created(data)
                if found is not None:
                    log.info("Shopify customerCreate %s: found, it was created", label)
                    return ShopifyWriteResult(ok=True, customer=found)
                if not checked:
                    return _failed(
                        f"outcome unknown ({exc.message}) and the customer could not be "
                        "looked up; check Shopify before creating it again",
                        unreachable=True,
                    )
                self.client.sleep(self.client.retry.delay(attempt, self.bulk.rng))
                continue
            except RetriableError as exc:
                return _failed(exc.message, unreachable=True)
            payload = response.data.get("customerCreate") or {}
            errors = user_error_messages(payload.get("userErrors"))
            if errors:
                if unknown and any(_TAKEN in error for error in errors):
                    # our lost attempt did create it; the lookup ran before Shopify's index
                    found, _ = self._find_created(data)
                    if found is not None:
                        return ShopifyWriteResult(ok=True, customer=found)
                log.info("Shopify customerCreate %s refused: %s", label, "; ".join(errors))
                return _refused(*errors)
            return self._result(payload.get("customer"))
        return _failed(
            f"outcome unknown after {self.client.retry.max_attempts} attempts: {unknown}",
            unreachable=True,
        )

    def _find_created(self, data: CustomerInput) -> tuple[ShopifyCustomer | None, bool]:
        """(customer, checked): look a possibly created customer up by e-mail, then phone."""
        if not (data.email or data.phone):
            return None, False
        try:
            if data.email:
                found = self.find_by_email(data.email)
                if found is not None:
                    return found, True
            if data.phone:
                return self.find_by_phone(data.phone), True
        except RetriableError:
            return None, False
        return None, True

    def _result(self, node: object) -> ShopifyWriteResult:
        if not node:
            return _failed("Shopify returned no customer")
        try:
            return ShopifyWriteResult(ok=True, customer=parse_customer(node))
        except BadRecord as exc:
            return _failed(f"Shopify returned an unreadable customer: {exc}")

    # -- update ------------------------------------------------------------------------------

    def update_customer(self, customer_id: str, data: CustomerInput) -> ShopifyWriteResult:
        """Send only the fields ``data`` sets; the address goes to its MailingAddress."""
        fields = customer_input(data, with_address=False)
        customer: ShopifyCustomer | None = None
        try:
            if fields:
                fields["id"] = customer_id
                payload = self._idempotent(docs.CUSTOMER_UPDATE, {"input": fields})
                root = payload.get("customerUpdate") or {}
                errors = user_error_messages(root.get("userErrors"))
                if errors:
                    return _refused(*errors)
                result = self._result(root.get("customer"))
                if not result.ok:
                    return result
                customer = result.customer
            if data.address is not None:
                errors = self._write_address(customer_id, data.address)
                if errors:
                    return _refused(*errors)
                customer = self.get_customer(customer_id)  # current updatedAt and addresses
        except RetriableError as exc:
            return _failed(exc.message, unreachable=True)
        return ShopifyWriteResult(ok=True, customer=customer)

    def _idempotent(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Send a mutation that is safe to repeat (same values), resending on lost answers."""
        for attempt in range(1, self.client.retry.max_attempts + 1):
            try:
                return dict(self.client.execute(document, variables).data)
            except OutcomeUnknown as exc:
                if attempt == self.client.retry.max_attempts:
                    raise RetriableError(exc.message) from exc
                self.client.sleep(self.client.retry.delay(attempt, self.bulk.rng))
        raise AssertionError("unreachable")

    def _write_address(self, customer_id: str, address: ShopifyAddress) -> tuple[str, ...]:
        variables: dict[str, Any] = {"customerId": customer_id, "address": address_input(address)}
        if address.id:
            variables["addressId"] = address.id
            payload = self._idempotent(docs.CUSTOMER_ADDRESS_UPDATE, variables)
            root = payload.get("customerAddressUpdate") or {}
            return user_error_messages(root.get("userErrors"))
        for attempt in range(1, self.client.retry.max_attempts + 1):
            try:
                payload = dict(self.client.execute(docs.CUSTOMER_ADDRESS_CREATE, variables).data)
            except OutcomeUnknown as exc:
                current = self.get_customer(customer_id)
                if current and any(_same_address(a, address) for a in current.addresses):
                    return ()
                if attempt == self.client.retry.max_attempts:
                    raise RetriableError(exc.message) from exc
                self.client.sleep(self.client.retry.delay(attempt, self.bulk.rng))
                continue
            root = payload.get("customerAddressCreate") or {}
            return user_error_messages(root.get("userErrors"))
        raise AssertionError("unreachable")

    # -- invite ------------------------------------------------------------------------------

    def send_invite(self, customer_id: str) -> ShopifyWriteResult:
        """Send the account invite e-mail (the customer's state becomes INVITED)."""
        for attempt in range(1, self.client.retry.max_attempts + 1):
            try:
                data = self.client.execute(docs.CUSTOMER_SEND_INVITE, {"customerId": customer_id})
            except OutcomeUnknown as exc:
                current = self.get_customer(customer_id)
                if current is not None and current.state == "INVITED":
                    return ShopifyWriteResult(ok=True, customer=current)
                if attempt == self.client.retry.max_attempts:
                    return _failed(exc.message)
                self.client.sleep(self.client.retry.delay(attempt, self.bulk.rng))
                continue
            except RetriableError as exc:
                return _failed(exc.message)
            root = data.data.get("customerSendAccountInviteEmail") or {}
            errors = user_error_messages(root.get("userErrors"))
            if errors:
                return _failed(*errors)
            return ShopifyWriteResult(ok=True, customer=self.get_customer(customer_id))
        return _failed("invite not sent")

    # -- webhook subscriptions ---------------------------------------------------------------

    def webhook_subscriptions(self) -> list[dict[str, str]]:
        """The app's webhook subscriptions on this shop: id, topic (enum), uri, createdAt."""
        found: list[dict[str, str]] = []
        after: str | None = None
        while True:
            data = self.client.execute(docs.WEBHOOK_SUBSCRIPTIONS, {"after": after})
            page = data.data.get("webhookSubscriptions") or {}
            found.extend(page.get("nodes") or ())
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return found
            after = info.get("endCursor")

    def create_webhook_subscription(self, topic: str, uri: str) -> tuple[str | None, list[str]]:
        """Subscribe ``uri`` to ``topic`` (a WebhookSubscriptionTopic such as
        CUSTOMERS_UPDATE): (the subscription id, []) or (None, Shopify's userErrors)."""
        try:
            data = self.client.execute(
                docs.WEBHOOK_SUBSCRIPTION_CREATE,
                {"topic": topic, "subscription": {"uri": uri, "format": "JSON"}},
            )
        except OutcomeUnknown as exc:
            # the answer was lost: the subscription may exist; the caller lists them again
            return None, [exc.message]
        root = data.data.get("webhookSubscriptionCreate") or {}
        errors = user_error_messages(root.get("userErrors"))
        created = root.get("webhookSubscription") or {}
        return (created.get("id") if not errors else None), list(errors)

    # -- bulk --------------------------------------------------------------------------------

    def _create_each(self, batch: list[tuple[str, CustomerInput]]) -> Iterator[ShopifyWriteResult]:
        """One create per customer, ``concurrency`` in flight, sharing one paced bucket."""
        return self._each([(key, partial(self.create_customer, data)) for key, data in batch])

    def _each(
        self, calls: Sequence[tuple[str, Callable[[], ShopifyWriteResult]]]
    ) -> Iterator[ShopifyWriteResult]:
        """Each call's result with its key: ``concurrency`` calls in flight (in order when
        one at a time), sharing one paced bucket; calls not yet started are cancelled when
        the caller stops reading."""
        if self.concurrency == 1 or len(calls) < 2:
            for key, call in calls:
                yield replace(call(), key=key)
            return
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="shopify") as pool:
            futures = {pool.submit(call): key for key, call in calls}
            try:
                for future in as_completed(futures):
                    yield replace(future.result(), key=futures[future])
            finally:
                for future in futures:
                    future.cancel()

    def bulk_create_customers(
        self,
        items: Iterable[tuple[str, CustomerInput]],
        *,
        on_started: Callable[[str], None] | None = None,
    ) -> Iterator[ShopifyWriteResult]:
        """Create many customers; one result per item, keyed (order may differ).

        Batches of at least ``bulk_write_threshold`` go through one bulk mutation (staged
        upload, ``bulkOperationRunMutation``, result file); ``on_started`` gets the bulk
        operation's id once it runs (journal it: :meth:`bulk_create_results` reads its result
        back after a crash). Smaller batches are created one by one, ``concurrency`` in flight.
        """
        batch = list(items)
        if not self.uses_bulk(len(batch)):
            yield from self._create_each(batch)
            return
        log.info("Shopify: creating %d customers by bulk mutation", len(batch))
        lines = ({"input": customer_input(data, with_address=True)} for _, data in batch)
        for result in self.bulk.run_mutation(docs.BULK_CUSTOMER_CREATE, lines, on_started):
            yield self._bulk_create_result(result, batch)

    def uses_bulk(self, creates: int) -> bool:
        """Whether :meth:`bulk_create_customers` sends ``creates`` customers by bulk mutation."""
        return creates > 0 and (
            self.bulk_writes == "always"
            or (self.bulk_writes == "auto" and creates >= self.bulk_write_threshold)
        )

    def bulk_create_results(
        self, operation_id: str, items: Sequence[tuple[str, CustomerInput]]
    ) -> Iterator[ShopifyWriteResult]:
        """The results of a bulk create started earlier (by a process that died): waits for
        the operation if it still runs; ``items`` are its input lines in order (their e-mail
        and phone suffice: a line without a result is looked up by them)."""
        batch = list(items)
        for result in self.bulk.mutation_results(operation_id, len(batch)):
            yield self._bulk_create_result(result, batch)

    def _bulk_create_result(
        self, result: LineResult, batch: Sequence[tuple[str, CustomerInput]]
    ) -> ShopifyWriteResult:
        key, item = batch[result.line]
        if result.missing:
            # no outcome for this line: it may have been applied before the job failed
            found, _ = self._find_created(item)
            if found is not None:
                return ShopifyWriteResult(ok=True, customer=found, key=key)
            return _failed(result.error, key=key)
        if result.data is None:
            return _failed(result.error or "no result for this customer", key=key)
        root = result.data.get("customerCreate") or {}
        errors = user_error_messages(root.get("userErrors"))
        if errors:
            return _refused(*errors, key=key)
        return replace(self._result(root.get("customer")), key=key)

    # -- bulk updates ------------------------------------------------------------------------

    def _update_each(
        self, batch: Sequence[tuple[str, str, CustomerInput]]
    ) -> Iterator[ShopifyWriteResult]:
        """One update per customer, ``concurrency`` in flight, sharing one paced bucket."""
        return self._each(
            [(key, partial(self.update_customer, gid, data)) for key, gid, data in batch]
        )

    def bulk_updatable(self, count: int, data: Iterable[CustomerInput]) -> bool:
        """Whether :meth:`bulk_update_customers` sends these ``count`` updates by bulk jobs:
        enough of them (:meth:`uses_bulk`), and every address they change is one the customer
        has (its id known: a new address is created one by one)."""
        return self.uses_bulk(count) and all(
            item.address is None or bool(item.address.id) for item in data
        )

    def bulk_update_customers(
        self,
        items: Iterable[tuple[str, str, CustomerInput]],
        *,
        on_started: Callable[[str, str], None] | None = None,
    ) -> Iterator[ShopifyWriteResult]:
        """Update many customers (key, Shopify id, input); one result per item, keyed (order
        may differ).

        A batch :meth:`bulk_updatable` goes as two bulk jobs: first the changed addresses
        (``customerAddressUpdate``, one line per update that changes its address, in item
        order), then ``customerUpdate`` for every item (its changed fields; only its id when
        just the address changed), whose answer carries the customer's ``updatedAt`` after
        both writes. ``on_started(part, job id)`` is called as each job runs (``part``
        "address" or "customer"; journal it: :meth:`bulk_update_results` and
        :meth:`bulk_address_results` read a job back after a crash). A line a job has no
        result for (it failed part way) is sent again on its own: an update with the same
        values is safe to repeat. An item whose address was refused fails with that message
        (its fields are written, as one by one). Other batches go one by one
        (:meth:`update_customer`), ``concurrency`` in flight."""
        batch = list(items)
        if not self.bulk_updatable(len(batch), (data for _, _, data in batch)):
            yield from self._update_each(batch)
            return

        def started(part: str) -> Callable[[str], None] | None:
            if on_started is None:
                return None
            return lambda operation: on_started(part, operation)

        refused: dict[int, ShopifyWriteResult] = {}
        moved = [i for i, (_, _, data) in enumerate(batch) if data.address is not None]
        if moved:
            log.info("Shopify: updating %d addresses by bulk mutation", len(moved))
            lines = (_address_line(batch[i][1], batch[i][2]) for i in moved)
            for line in self.bulk.run_mutation(
                docs.BULK_CUSTOMER_ADDRESS_UPDATE, lines, started("address")
            ):
                key, gid, data = batch[moved[line.line]]
                if line.missing:
                    result = self._resend_address(key, gid, data)
                else:
                    result = _bulk_address_result(line, key)
                if not result.ok:
                    refused[moved[line.line]] = result
        log.info("Shopify: updating %d customers by bulk mutation", len(batch))
        lines = (
            {"input": {**customer_input(data, with_address=False), "id": gid}}
            for _, gid, data in batch
        )
        for line in self.bulk.run_mutation(docs.BULK_CUSTOMER_UPDATE, lines, started("customer")):
            key, gid, data = batch[line.line]
            if line.missing:
                log.info("Shopify: bulk update line %d has no result; sending it alone", line.line)
                result = self._resend_customer(key, gid, data)
            else:
                result = self._bulk_update_result(line, key)
            yield refused.get(line.line, result)

    def _resend_address(self, key: str, gid: str, data: CustomerInput) -> ShopifyWriteResult:
        """An address line a bulk job has no result for, sent on its own."""
        assert data.address is not None
        try:
            errors = self._write_address(gid, data.address)
        except RetriableError as exc:
            return _failed(exc.message, key=key, unreachable=True)
        return _refused(*errors, key=key) if errors else ShopifyWriteResult(ok=True, key=key)

    def _resend_customer(self, key: str, gid: str, data: CustomerInput) -> ShopifyWriteResult:
        """A customer line a bulk job has no result for, sent on its own (its address was
        written by the address job); with no field to send, the customer is read for its
        ``updatedAt``."""
        result = replace(self.update_customer(gid, replace(data, address=None)), key=key)
        if result.ok and result.customer is None:
            try:
                result = replace(result, customer=self.get_customer(gid))
            except RetriableError as exc:
                return _failed(exc.message, key=key, unreachable=True)
        return result

    def bulk_update_results(
        self, operation_id: str, keys: Sequence[str]
    ) -> Iterator[ShopifyWriteResult]:
        """The results of a ``customerUpdate`` bulk job started earlier (by a process that
        died), one per input line (``keys`` in line order); waits for the job if it still
        runs. A line without a result fails ("no result"): it may or may not have been
        applied, and the values to send again are not known here."""
        for result in self.bulk.mutation_results(operation_id, len(keys)):
            yield self._bulk_update_result(result, keys[result.line])

    def bulk_address_results(
        self, operation_id: str, keys: Sequence[str]
    ) -> Iterator[ShopifyWriteResult]:
        """As :meth:`bulk_update_results`, for a ``customerAddressUpdate`` job (no customer
        in the results); a line without a result is left out (whether it was applied is not
        known)."""
        for result in self.bulk.mutation_results(operation_id, len(keys)):
            if not result.missing:
                yield _bulk_address_result(result, keys[result.line])

    def _bulk_update_result(self, result: LineResult, key: str) -> ShopifyWriteResult:
        if result.data is None:
            return _failed(result.error or "no result for this customer", key=key)
        root = result.data.get("customerUpdate") or {}
        errors = user_error_messages(root.get("userErrors"))
        if errors:
            return _refused(*errors, key=key)
        return replace(self._result(root.get("customer")), key=key)


def _address_line(gid: str, data: CustomerInput) -> dict[str, Any]:
    """A ``customerAddressUpdate`` line of a bulk update (the address has its id)."""
    assert data.address is not None
    return {
        "customerId": gid,
        "addressId": data.address.id,
        "address": address_input(data.address),
    }


def _bulk_address_result(result: LineResult, key: str) -> ShopifyWriteResult:
    if result.data is None:
        return _failed(result.error or "no result for this address", key=key)
    root = result.data.get("customerAddressUpdate") or {}
    errors = user_error_messages(root.get("userErrors"))
    if errors:
        return _refused(*errors, key=key)
    return ShopifyWriteResult(ok=True, key=key)
