"""The in-memory world a plan is made against: records plus the indexes the facts read.

Built once per run/plan and read-only afterwards. Memory is the records plus a handful of
dicts; nothing per evaluated record is kept. Lookups that need phonenumbers (E.164) parse
only the few candidates a cheap digit-suffix index returns, never the whole ERP.

"Number order" is the order of ERP customer numbers as text (``sorted``), which is how the
ERP lists them; the first customer in that order wins every tie.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import pycountry

from ..model import (
    ErpCustomer,
    ErpReference,
    Link,
    ShopifyCustomer,
)
from . import phones

#: the id under which a Shopify customer an export of the run will create is noted
PLANNED_CUSTOMER = "planned-for:"


def _add(index: dict[str, str | list[str]], key: str, no: str) -> None:
    """Append ``no`` to a compact multi-map (a single value is stored without a list)."""
    present = index.get(key)
    if present is None:
        index[key] = no
    elif isinstance(present, list):
        if present[-1] != no:
            present.append(no)
    elif present != no:
        index[key] = [present, no]


def _values(index: Mapping[str, str | list[str]], key: str) -> list[str]:
    present = index.get(key)
    if present is None:
        return []
    return present if isinstance(present, list) else [present]


def _folded(text: str) -> str:
    """``text`` stripped and case-folded, reusing the string itself when it already is (an
    index over a million e-mails then holds no second copy of each)."""
    value = text.strip()
    folded = value.casefold()
    return value if folded == value else folded


def _iso_known(code: str) -> bool:
    return len(code) == 2 and pycountry.countries.get(alpha_2=code) is not None


def _number(customer: ErpCustomer) -> str:
    return customer.no


def bill_to_key(
    name: str, address: str, address_2: str, post_code: str, city: str, country_iso: str
) -> tuple[str, ...]:
    """Equality key of a name and address: name and address lines ignoring case, zip, city and
    country exactly."""
    return (
        " ".join(name.split()).casefold(),
        " ".join(address.split()).casefold(),
        " ".join(address_2.split()).casefold(),
        post_code.strip(),
        city.strip(),
        country_iso.strip().upper(),
    )


class World:
    """ERP customers, ERP reference data, Shopify customers and links, with their indexes."""

    def __init__(
        self,
        erp_customers: Iterable[ErpCustomer],
        reference: ErpReference | None = None,
        shopify_customers: Iterable[ShopifyCustomer] = (),
        links: Iterable[Link] = (),
    ) -> None:
        self.reference = reference or ErpReference()
        # --- ERP reference ----------------------------------------------------------------
        self._erp_to_iso: dict[str, str] = {}
        self._iso_to_erp: dict[str, str] = {}
        for country in self.reference.countries:
            code = country.code.strip().upper()
            iso = country.iso_code.strip().upper()
            self._erp_to_iso.setdefault(code, iso)
            if iso and (iso not in self._iso_to_erp or code == iso):
                self._iso_to_erp[iso] = country.code.strip()
        self.template_codes = frozenset(t.code for t in self.reference.templates)
        #: ERP country code as stored on a customer -> (code, ISO code, from the company)
        self._countries: dict[str, tuple[str, str, bool]] = {}
        # --- ERP customers, in number order (the last of equal numbers wins) -----------------
        ordered = sorted((c for c in erp_customers if c.no), key=_number)
        self.erp: dict[str, ErpCustomer] = {c.no: c for c in ordered}
        del ordered
        self._email: dict[str, str] = {}
        #: folded e-mail -> the ERP customers after the first that have it (rare)
        self._email_namesakes: dict[str, list[str]] = {}
        self._phone: dict[str, str | list[str]] = {}
        email_index, phone_index = self._email, self._phone
        suffix = phones.SUFFIX_DIGITS
        for no, customer in self.erp.items():  # a million times: written out, not called
            email = customer.email
            if email:
                email = email.strip()
                folded = email.casefold()
                if folded != email:
                    email = folded
                if email and email not in email_index:
                    email_index[email] = no
                elif email:
                    self._email_namesakes.setdefault(email, []).append(no)
            phone = customer.phone
            if phone:
                if "x" in phone or "X" in phone or "#" in phone:  # maybe an extension
                    keys: Iterable[str] = phones.suffix_keys(phone)
                else:  # phones.suffix_keys without an extension: one key
                    only = phones.digits(phone)
                    keys = (only[-suffix:],) if len(only) >= suffix else ()
                for key in keys:
                    present = phone_index.get(key)
                    if present is None:
                        phone_index[key] = no
                    else:
                        _add(phone_index, key, no)
        self._bill_to: dict[tuple[str, ...], str] | None = None  # built on first use
        # --- Shopify customers --------------------------------------------------------------
        self.shopify: dict[str, ShopifyCustomer] = {}
        self._shopify_email: dict[str, str] = {}
        self._shopify_phone: dict[str, str] = {}
        by_id, shopify_email, shopify_phone = self.shopify, self._shopify_email, self._shopify_phone
        for shopify_customer in shopify_customers:  # add_shopify, written out
            by_id[shopify_customer.id] = shopify_customer
            email = shopify_customer.email
            if email:
                email = email.strip()
                folded = email.casefold()
                if folded != email:
                    email = folded
                if email and email not in shopify_email:
                    shopify_email[email] = shopify_customer.id
            if shopify_customer.phone:
                phone = phones.normal_e164(shopify_customer.phone)
                if phone and phone not in shopify_phone:
                    shopify_phone[phone] = shopify_customer.id
        # --- links --------------------------------------------------------------------------
        self._links: dict[tuple[str, str], Link] = {}
        self._links_by_erp: dict[tuple[str, str], Link] = {}
        self._address_links: dict[tuple[str, str], str] = {}
        for link in links:
            self._links[(link.shop, link.shopify_id)] = link
            self._links_by_erp.setdefault((link.shop, link.erp_no), link)
            for address_id in link.address_ids:
                self._address_links[(link.shop, address_id)] = link.erp_no
        #: links noted by the decisions of a run so far (see note_link): key -> stored link
        self._noted: dict[tuple[str, str], Link | None] = {}
        #: (shop, ERP number) -> the Shopify customer an earlier decision of the run links it to
        self._noted_erp: dict[tuple[str, str], str] = {}
        #: e-mails of Shopify customers an export of this run will create (see note_created)
        self._noted_emails: list[str] = []

    # --- building ------------------------------------------------------------------------------

    def add_shopify(self, customer: ShopifyCustomer) -> None:
        """Add (or replace) a Shopify customer, e.g. one fetched for an order."""
        self.shopify[customer.id] = customer
        if customer.email:
            email = _folded(customer.email)
            if email and email not in self._shopify_email:
                self._shopify_email[email] = customer.id
        if customer.phone:
            phone = phones.normal_e164(customer.phone)
            if phone and phone not in self._shopify_phone:
                self._shopify_phone[phone] = customer.id

    # --- countries -----------------------------------------------------------------------------

    def iso_for_erp_country(self, code: str | None) -> str:
        """ISO code of an ERP country code: from the ERP country table (blank when the row has
        none); a code missing from the table counts as ISO when it is a known ISO code."""
        value = (code or "").strip().upper()
        if not value:
            return ""
        if value in self._erp_to_iso:
            return self._erp_to_iso[value]
        return value if _iso_known(value) else ""

    def erp_country_for_iso(self, iso_code: str | None) -> str:
        """The ERP country whose ISO code is ``iso_code``, else the ISO code itself."""
        value = (iso_code or "").strip().upper()
        return self._iso_to_erp.get(value, value)

    def customer_country(self, customer: ErpCustomer) -> tuple[str, str, bool]:
        """(ERP country code, its ISO code, whether the company's country was used)."""
        stored = customer.country_code
        known = self._countries.get(stored)
        if known is None:
            code = stored.strip()
            from_company = False
            if not code:
                code = self.reference.company.country_code.strip()
                from_company = bool(code)
            known = (code, self.iso_for_erp_country(code), from_company)
            if len(self._countries) < 10_000:  # country codes are few; bound it anyway
                self._countries[stored] = known
        return known

    def customer_region(self, customer: ErpCustomer) -> str:
        return self.customer_country(customer)[1]

    def erp_e164(self, customer: ErpCustomer) -> str | None:
        """The ERP customer's phone in E.164, read in its country; None when invalid."""
        if not customer.phone:
            return None
        return phones.to_e164(customer.phone, self.customer_region(customer) or None)

    # --- ERP lookups ---------------------------------------------------------------------------

    def erp_customer(self, no: str | None) -> ErpCustomer | None:
        return self.erp.get(no) if no else None

    def erp_by_email(self, email: str | None) -> str | None:
        """First ERP customer (number order) whose e-mail equals ``email`` ignoring case."""
        if not email:
            return None
        value = email.strip().casefold()
        return self._email.get(value) if value else None

    def erp_email_namesakes(self, email: str | None) -> list[str]:
        """The ERP customers, after the first (:meth:`erp_by_email`), whose e-mail also
        equals ``email`` ignoring case, in number order."""
        value = email.strip().casefold() if email else ""
        return list(self._email_namesakes.get(value, ())) if value else []

    def _phone_candidates(self, key: str) -> list[str]:
        return _values(self._phone, key) if key else []

    def erp_by_e164(
        self, e164: str | None, exclude: str | None = None, *, valid_only: bool = False
    ) -> str | None:
        """First ERP customer whose phone, read in its own country, is this E.164 number
        (``valid_only``: only valid numbers count, as on export; else any that parses)."""
        if not e164:
            return None
        read = phones.to_e164 if valid_only else phones.match_e164
        # _phone_candidates written out: asked for every exported customer's own number
        key = phones.suffix_key(e164)
        present = self._phone.get(key) if key else None
        if present is None:
            return None
        for no in present if isinstance(present, list) else (present,):
            if no == exclude:
                continue
            customer = self.erp[no]
            region = self.customer_country(customer)[1] or None
            # most candidates only share the last digits: rejected without parsing them
            if phones.could_read_as(customer.phone, region, e164) and (
                read(customer.phone, region) == e164
            ):
                return no
        return None

    def erp_by_phone_digits(self, phone: str | None) -> str | None:
        """First ERP customer by the reference connector's digit rule (see phones.py).

        Candidates share the last :data:`phones.SUFFIX_DIGITS` digits, so extra ERP digits are
        found in front of those (a country code, a trunk zero); numbers shorter than that are
        not matched by digits (they would match almost any phone).
        """
        wanted = phones.digits(phone)
        if len(wanted) < phones.MIN_DIGIT_RULE_DIGITS:
            return None
        for no in self._phone_candidates(wanted[-phones.SUFFIX_DIGITS :]):
            if phones.match_digits(wanted, phones.digits(self.erp[no].phone)):
                return no
        return None

    def phone_owner(self, customer: ErpCustomer, e164: str) -> str | None:
        """Another ERP customer (the first in number order) whose phone is ``e164``."""
        return self.erp_by_e164(e164, exclude=customer.no, valid_only=True)

    def erp_by_name_and_address(self, key: tuple[str, ...]) -> str | None:
        """First ERP customer whose Name and address equal ``key`` (see :func:`bill_to_key`)."""
        if self._bill_to is None:
            index: dict[tuple[str, ...], str] = {}
            for no, customer in self.erp.items():
                _, iso, _ = self.customer_country(customer)
                index.setdefault(
                    bill_to_key(
                        customer.name,
                        customer.address,
                        customer.address_2,
                        customer.post_code,
                        customer.city,
                        iso or customer.country_code,
                    ),
                    no,
                )
            self._bill_to = index
        return self._bill_to.get(key)

    # --- Shopify lookups -----------------------------------------------------------------------

    def shopify_customer(self, customer_id: str | None) -> ShopifyCustomer | None:
        return self.shopify.get(customer_id) if customer_id else None

    def shopify_by_email(self, email: str | None) -> str | None:
        if not email:
            return None
        value = email.strip().casefold()
        return self._shopify_email.get(value) if value else None

    def shopify_by_phone(self, e164: str | None) -> str | None:
        value = phones.normal_e164(e164)
        return self._shopify_phone.get(value) if value else None

    def shopify_by_e164(self, e164: str) -> str | None:
        """:meth:`shopify_by_phone` of a number as :func:`phones.to_e164` gives it (already
        ``+`` and digits, nothing to normalise)."""
        return self._shopify_phone.get(e164)

    # --- links ---------------------------------------------------------------------------------

    def link_for_shopify(self, shop: str, shopify_id: str) -> Link | None:
        return self._links.get((shop, shopify_id))

    def link_for_erp(self, shop: str, erp_no: str) -> Link | None:
        return self._links_by_erp.get((shop, erp_no))

    def address_link(self, shop: str, address_id: str | None) -> str | None:
        """The ERP customer a Shopify address (MailingAddress gid) is linked to."""
        if not address_id:
            return None
        found = self._address_links.get((shop, address_id))
        if found is None:
            link = self._links.get((shop, address_id))
            found = link.erp_no if link is not None else None
        return found

    def links(self) -> Iterator[Link]:
        return iter(self._links.values())

    def note_link(self, link: Link) -> None:
        """A link an earlier decision of the same run will make: the decisions after it see
        the Shopify customer as linked to ``link.erp_no`` (one Shopify customer maps to one
        ERP customer, so a second ERP customer with its e-mail is not adopted by it too).

        Only the Shopify side is noted: the ERP customer's own export still sees it as not
        yet linked (it adopts the customer its import just matched, as planned). Undone by
        :meth:`forget_noted_links`.
        """
        key = (link.shop, link.shopify_id)
        if key not in self._noted:
            self._noted[key] = self._links.get(key)
        self._links[key] = link
        self._noted_erp.setdefault((link.shop, link.erp_no), link.shopify_id)

    def note_created(self, shop: str, email: str, erp_no: str) -> None:
        """A Shopify customer with ``email`` an earlier export of the same run will create
        for ERP customer ``erp_no``: the exports after it find it by that e-mail as linked
        to ``erp_no`` (a second ERP customer with the e-mail is ``already-exists``, as it is
        once the first one's customer exists, instead of failing on Shopify's "Email has
        already been taken"). Undone by :meth:`forget_noted_links`."""
        folded = _folded(email)
        if not folded or folded in self._shopify_email:
            return
        planned = f"{PLANNED_CUSTOMER}{erp_no}"
        self._shopify_email[folded] = planned
        self._noted_emails.append(folded)
        self.note_link(Link(shop=shop, shopify_id=planned, erp_no=erp_no))

    def linked_elsewhere(self, shop: str, erp_no: str, shopify_id: str) -> str | None:
        """The other Shopify customer ``erp_no`` is linked to (stored, or by an earlier
        decision of the run), or None: one ERP customer maps to one Shopify customer."""
        stored = self._links_by_erp.get((shop, erp_no))
        if stored is not None and stored.shopify_id != shopify_id:
            return stored.shopify_id
        noted = self._noted_erp.get((shop, erp_no))
        if noted is not None and noted != shopify_id:
            return noted
        return None

    def forget_noted_links(self) -> None:
        """Back to the stored links and customers only (e.g. before orders are decided)."""
        self._noted_erp.clear()
        for key, stored in self._noted.items():
            if stored is None:
                self._links.pop(key, None)
            else:
                self._links[key] = stored
        self._noted.clear()
        for email in self._noted_emails:
            self._shopify_email.pop(email, None)
        self._noted_emails.clear()
