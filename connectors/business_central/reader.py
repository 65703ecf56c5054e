"""Reading customers and reference data from Business Central (``ErpReader``).

Customers come from the standard ``customers`` API (v2.0) in number order, paged by the
server (``@odata.nextLink``). What that API lacks is read from the *sources* the config
names (settings.py ``pages``): Name 2, Contact and the posting groups from the Customer Card
(page 21) or a customer's own API page, ISO country codes from the Countries/Regions page,
customer templates from the Customer Templ. page. A source that is not configured or not
published is *unavailable*: :meth:`BcErpReader.unavailable` says why, ``problems()`` reports
it, and the values it would give stay blank on purpose (validate and plan name the reason).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pycountry
from custsync.engine.decide.phones import suffix_keys
from custsync.engine.errors import ConfigError, FatalError, RetriableError
from custsync.engine.model import (
    ERP_TEMPLATE_FIELDS,
    CompanyInfo,
    Country,
    CustomerTemplate,
    ErpCustomer,
    ErpReference,
)
from custsync.engine.ports import ConnectionFinding, SourceProblem

from .client import BcClient, BcHttpError
from .mapping import (
    CARD_TEMPLATE_FIELDS,
    CUSTOMER_SELECT,
    PAGE_ONLY_FIELDS,
    VAT_GROUPS,
    customer_from_api,
    odata_datetime,
    odata_string,
)
from .settings import BcSettings, PageSource

__all__ = ["BcErpReader"]

log = logging.getLogger("custsync.bc")

_OR_CHUNK = 20  # numbers per "No eq .. or No eq .." filter (URL length)
#: BC's largest page (20,000 entities): the phone index reads two short fields per customer
_INDEX_PAGE = 20_000
#: field lengths of table 18 a filter value must fit (BC refuses a longer Code filter value;
#: a longer Text value cannot be stored, so it cannot match)
_MAX_EMAIL, _MAX_CODE = 80, 20
#: what custsync does while a source is unavailable (validate's warnings say it)
_WITHOUT = {
    "customer_card": "Name 2, Contact, the posting groups and the language are not read or "
    "written (each create and update that would write them says so)",
    "countries": "ISO codes are assumed from BC's codes (EL as GR, UK as GB); other codes "
    "are not mapped and their customers are skipped",
    "customer_templates": "creates get BC's own defaults and say 'template ... not applied'",
}
_WHAT = {
    "customer_card": "Name 2, Contact and posting groups (Customer Card, page 21)",
    "countries": "ISO country codes (Countries/Regions page)",
    "customer_templates": "customer templates (Customer Templ. page)",
}


class BcErpReader:
    """``ErpReader`` over BC's API v2.0 for one company. Close it when done."""

    def __init__(self, client: BcClient) -> None:
        self.client = client
        self.settings: BcSettings = client.settings
        self._company: dict[str, Any] | None = None
        self._codes: dict[str, dict[str, str]] = {}
        self._unavailable: dict[str, str] = {
            name: f"{_WHAT[name]}: not configured (erp.business_central.pages.{name})"
            for name in _WHAT
            if name not in self.settings.pages
        }
        self._problems: list[SourceProblem] = []
        self._ids: dict[str, str] = {}  # customer no. -> id
        # the phone index of candidates(): suffix key -> numbers, number -> its keys, and when
        # it was last brought up to date (this machine's clock; the overlap covers BC's)
        self._phone_numbers: dict[str, set[str]] = {}
        self._phone_keys_of: dict[str, set[str]] = {}
        self._phones_read_at: datetime | None = None
        self._email_filter_refused = False

    def __enter__(self) -> BcErpReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    @property
    def url(self) -> str:
        return self.settings.display

    # ---- company -------------------------------------------------------------------------

    @property
    def company(self) -> dict[str, Any]:
        """The configured company (by id or name), found once."""
        if self._company is None:
            self._company = self._find_company()
        return self._company

    def _find_company(self) -> dict[str, Any]:
        wanted = self.settings.company
        try:
            companies = list(self.client.iter_collection("companies"))
        except BcHttpError as exc:
            if exc.status == 404:
                raise ConfigError(
                    f"Business Central environment {self.settings.base_url} not found "
                    f"({exc.brief}): check the tenant and environment name in erp.url"
                ) from None
            raise
        for company in companies:
            if wanted in (company.get("id"), company.get("name")):
                return company
        names = ", ".join(repr(c.get("name")) for c in companies) or "(none)"
        near = [
            c.get("name") for c in companies if str(c.get("name", "")).lower() == wanted.lower()
        ]
        hint = f" (names are case-sensitive: {near[0]!r}?)" if near else ""
        raise ConfigError(
            f"Business Central {self.settings.base_url}: company {wanted!r} does not exist"
            f"{hint}; the environment has: {names}"
        )

    def _company_path(self, entity_set: str) -> str:
        return f"companies({self.company['id']})/{entity_set}"

    # ---- sources the standard API lacks --------------------------------------------------

    def unavailable(self) -> Mapping[str, str]:
        """Source name -> why it cannot be read (not configured, not published)."""
        return dict(self._unavailable)

    def unwritable_fields(self) -> Mapping[str, str]:
        """``ErpFieldLimits``: Name 2, Contact, the posting groups and the language while the
        Customer Card source is unavailable."""
        reason = self._unavailable.get("customer_card")
        if not reason:
            return {}
        return {name: reason for name in (*PAGE_ONLY_FIELDS, *CARD_TEMPLATE_FIELDS)}

    def has_source(self, name: str) -> bool:
        return name in self.settings.pages and name not in self._unavailable

    def _page_rows(self, name: str, filter_: str | None = None) -> Iterator[dict[str, Any]] | None:
        """The rows of source ``name`` renamed to custsync field names; None when it is
        unavailable (the reason is kept)."""
        if not self.has_source(name):
            return None
        source: PageSource = self.settings.pages[name]
        path = source.url_path(str(self.company.get("name", "")), str(self.company["id"]))
        params = {"$select": ",".join(source.fields.values())}
        if filter_:
            params["$filter"] = filter_
        rows = self.client.iter_collection(path, params)
        try:
            first = next(rows, None)
        except BcHttpError as exc:
            if exc.status in (400, 404):
                self._mark_unavailable(name, source, exc)
                return None
            raise
        return self._renamed(source, first, rows)

    @staticmethod
    def _renamed(
        source: PageSource, first: dict[str, Any] | None, rows: Iterator[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        if first is None:
            return
        inverse = {prop: field for field, prop in source.fields.items()}
        yield {inverse[k]: v for k, v in first.items() if k in inverse}
        for row in rows:
            yield {inverse[k]: v for k, v in row.items() if k in inverse}

    def _mark_unavailable(self, name: str, source: PageSource, exc: BcHttpError) -> None:
        if "/" in source.path:  # route 2: the customer's own API page
            todo = (
                "check that the extension with this API page is installed in the environment, "
                "that the path (api/<publisher>/<group>/<version>/companies({company_id})/"
                "<entity set>) and field names match it, and that the app may read it"
            )
        else:  # route 1: a page published as an OData web service
            todo = (
                f"publish the page as a web service named {source.path!r} (page Web Services, "
                "Published) or name your own API page in "
                f"erp.business_central.pages.{name}"
            )
        reason = f"{_WHAT[name]}: {source.path!r} cannot be read ({exc.brief}); {todo}"
        if name not in self._unavailable:
            log.warning("Business Central: %s", reason)
            self._problems.append(SourceProblem(name, source.path, reason))
        self._unavailable[name] = reason

    # ---- reference data --------------------------------------------------------------------

    def lookup_codes(self, entity_set: str) -> dict[str, str]:
        """id -> code of ``paymentTerms``, ``paymentMethods``, ``taxAreas``, ``currencies``."""
        if entity_set not in self._codes:
            tax = entity_set == "taxAreas"
            rows = list(
                self.client.iter_collection(
                    self._company_path(entity_set),
                    {"$select": "id,code,taxType" if tax else "id,code"},
                )
            )
            self._codes[entity_set] = {str(r.get("id")): str(r.get("code") or "") for r in rows}
            if tax:
                self._codes[VAT_GROUPS] = {
                    str(r.get("id")): str(r.get("code") or "") for r in rows if _is_vat(r)
                }
        return self._codes[entity_set]

    def _codes_for_customers(self) -> dict[str, dict[str, str]]:
        codes = {
            name: self.lookup_codes(name) for name in ("paymentTerms", "paymentMethods", "taxAreas")
        }
        codes[VAT_GROUPS] = self._vat_groups()
        return codes

    def _vat_groups(self) -> dict[str, str]:
        """id -> code of the ``taxAreas`` rows whose ``taxType`` is VAT: in a VAT country BC's
        ``taxAreaId`` points to the customer's *VAT Bus. Posting Group*, not a tax area
        (APIV2 uses General Ledger Setup's "use VAT"), so those ids are read as that."""
        self.lookup_codes("taxAreas")
        return self._codes[VAT_GROUPS]

    def _company_info(self) -> CompanyInfo:
        """The company's name and country (``companyInformation``; ``company_country``
        overrides the country, and stands in when that entity cannot be read)."""
        name = str(self.company.get("displayName") or self.company.get("name") or "")
        country = self.settings.company_country
        try:
            info = next(self.client.iter_collection(self._company_path("companyInformation")), {})
        except BcHttpError as exc:
            if exc.status not in (400, 404):
                raise
            if not country:
                self._problems.append(
                    SourceProblem(
                        "company",
                        "companyInformation",
                        f"the company's country cannot be read ({exc.brief}); customers with "
                        "a blank country get none: set erp.business_central.company_country",
                    )
                )
            return CompanyInfo(name=name, country_code=country)
        return CompanyInfo(
            name=str(info.get("displayName") or name),
            country_code=country or str(info.get("country") or ""),
        )

    def reference(self) -> ErpReference:
        """Countries (ISO codes from the Countries/Regions source when available), the
        company (companyInformation) and the customer templates (when available)."""
        company = self._company_info()
        countries: tuple[Country, ...]
        rows = self._page_rows("countries")
        if rows is not None:
            countries = tuple(
                sorted(
                    (
                        Country(
                            str(r.get("code", "")),
                            str(r.get("iso_code", "") or ""),
                            str(r.get("name", "") or ""),
                        )
                        for r in rows
                    ),
                    key=lambda c: c.code,
                )
            )
        else:
            countries = tuple(
                sorted(
                    (
                        Country(
                            str(r.get("code", "")),
                            assumed_iso(str(r.get("code", ""))),
                            str(r.get("displayName", "") or ""),
                        )
                        for r in self.client.iter_collection(
                            self._company_path("countriesRegions"), {"$select": "code,displayName"}
                        )
                    ),
                    key=lambda c: c.code,
                )
            )
        templates: tuple[CustomerTemplate, ...] = ()
        template_rows = self._page_rows("customer_templates")
        if template_rows is not None:
            templates = tuple(
                sorted((_template(row) for row in template_rows), key=lambda t: t.code)
            )
        return ErpReference(countries=countries, company=company, templates=templates)

    # ---- customers -----------------------------------------------------------------------

    def iter_customers(self, changed_since: datetime | None = None) -> Iterator[ErpCustomer]:
        """Customers in number order; with ``changed_since`` those whose
        ``lastModifiedDateTime`` is within ``modified_overlap_seconds`` before it or later (the
        overlap covers clock differences between BC and this machine; a record is yielded
        once even if paging meets it twice)."""
        params = {"$select": CUSTOMER_SELECT, "$orderby": "number"}
        if changed_since is not None:
            if changed_since.tzinfo is None:
                raise ValueError("changed_since must be timezone-aware (UTC)")
            since = changed_since - timedelta(seconds=self.settings.modified_overlap_seconds)
            params["$filter"] = f"lastModifiedDateTime gt {odata_datetime(since)}"
        codes = self._codes_for_customers()
        seen: set[str] = set()
        page: list[dict[str, Any]] = []
        for entity in self.client.iter_collection(self._company_path("customers"), params):
            ident = str(entity.get("id"))
            if ident in seen:
                continue
            seen.add(ident)
            page.append(entity)
            if len(page) >= self.settings.page_size:
                yield from self._with_cards(page, codes, ranged=changed_since is None)
                page = []
        if page:
            yield from self._with_cards(page, codes, ranged=changed_since is None)

    def _with_cards(
        self,
        entities: Sequence[dict[str, Any]],
        codes: Mapping[str, Mapping[str, str]],
        *,
        ranged: bool,
    ) -> Iterator[ErpCustomer]:
        nos = [str(e.get("number", "")) for e in entities]
        cards = self._cards(nos, ranged=ranged)
        for entity, no in zip(entities, nos, strict=True):
            self.remember(entity)
            yield customer_from_api(
                entity, cards.get(no) if cards is not None else None, codes=codes
            )

    def _cards(self, nos: Sequence[str], *, ranged: bool) -> dict[str, dict[str, Any]] | None:
        """Page rows of the customers ``nos`` by number; None when the source is unavailable.
        ``ranged``: one filtered read over the numbers' range (a full read), else chunks of
        ``No eq .. or ..``."""
        if not nos or not self.has_source("customer_card"):
            return None
        key = self.settings.pages["customer_card"].fields["no"]
        found: dict[str, dict[str, Any]] = {}
        if ranged:
            filters = [f"{key} ge {odata_string(min(nos))} and {key} le {odata_string(max(nos))}"]
        else:
            filters = [
                " or ".join(f"{key} eq {odata_string(no)}" for no in nos[i : i + _OR_CHUNK])
                for i in range(0, len(nos), _OR_CHUNK)
            ]
        for filter_ in filters:
            rows = self._page_rows("customer_card", filter_)
            if rows is None:
                return None
            for row in rows:
                found[str(row.get("no", ""))] = row
        return found

    def remember(self, entity: Mapping[str, Any]) -> None:
        """Keep the id of a customer read (PATCH addresses customers by id)."""
        no = entity.get("number")
        if no:
            self._ids[str(no)] = str(entity.get("id"))

    def _entity_by_number(self, no: str) -> dict[str, Any] | None:
        params = {"$select": CUSTOMER_SELECT, "$filter": f"number eq {odata_string(no)}"}
        for entity in self.client.iter_collection(self._company_path("customers"), params):
            if entity.get("number") == no:
                self.remember(entity)
                return entity
        return None

    def get_customer(self, no: str) -> ErpCustomer | None:
        if not no or len(no) > 20:  # BC refuses a filter longer than the Code[20] field
            return None
        entity = self._entity_by_number(no)
        if entity is None:
            return None
        return self._one(entity)

    def _one(self, entity: dict[str, Any]) -> ErpCustomer:
        return next(self._with_cards([entity], self._codes_for_customers(), ranged=False))

    # ---- candidates (ErpCandidateReader) --------------------------------------------------

    def candidates(
        self,
        *,
        emails: Sequence[str] = (),
        phone_keys: Sequence[str] = (),
        post_codes: Sequence[str] = (),
        nos: Sequence[str] = (),
    ) -> list[ErpCustomer] | None:
        """``ErpCandidateReader``: the customers an incremental run's changes can match, in
        number order; None (the caller reads everything) when BC refuses the e-mail filter.

        * e-mails: ``tolower(email) eq '<lower-case>'``, 20 per request joined by ``or`` (one
          field, which BC allows). BC compares text case-sensitively; ``tolower`` is how BC
          turns that off ("the closest AL approximation": a case-insensitive filter), so
          ``Ann@X.com`` in BC is found for ``ann@x.com`` as a full read would match it.
        * phone suffix keys: BC's ``phoneNumber`` is free text ("+1 (425) 555-0100"); no
          filter can match the last six *digits* across separators, and ``endswith`` on the
          text would silently miss numbers typed with spaces (a missed match is a duplicate
          customer). So the reader keeps an index of every customer's number and phone: one
          read of ``number,phoneNumber`` in pages of 20,000 the first time, afterwards only
          the customers modified since (``lastModifiedDateTime``, with the overlap).
        * post codes: ``postalCode eq`` (a Code field: BC stores it upper-case).
        * ``nos`` and the numbers the phone index found: ``number eq``, 20 per request.
        """
        entities: dict[str, dict[str, Any]] = {}
        wanted = sorted({e.strip().lower() for e in emails if e and e.strip()})
        wanted = [e for e in wanted if len(e) <= _MAX_EMAIL]
        if wanted:
            if self._email_filter_refused:
                return None
            try:
                self._fetch_any("tolower(email)", wanted, entities)
            except BcHttpError as exc:
                if exc.status != 400:
                    raise
                self._email_filter_refused = True
                log.warning(
                    "Business Central refused the e-mail look-up tolower(email) eq ... (%s): "
                    "incremental runs read every customer instead",
                    exc.brief,
                )
                return None
        codes_wanted = sorted({p.strip().upper() for p in post_codes if p and p.strip()})
        self._fetch_any("postalCode", [p for p in codes_wanted if len(p) <= _MAX_CODE], entities)
        numbers = {no for no in nos if no and len(no) <= _MAX_CODE}
        keys = {key for key in phone_keys if key}
        if keys:
            self._refresh_phone_index()
            for key in keys:
                numbers.update(self._phone_numbers.get(key, ()))
        self._fetch_any("number", sorted(numbers - set(entities)), entities)
        ordered = [entities[no] for no in sorted(entities)]
        return list(self._with_cards(ordered, self._codes_for_customers(), ranged=False))

    def _fetch_any(
        self, field: str, values: Sequence[str], into: dict[str, dict[str, Any]]
    ) -> None:
        """The customers whose ``field`` equals one of ``values`` (``field eq 'a' or field
        eq 'b'``, at most 20 a request), by number into ``into``."""
        for i in range(0, len(values), _OR_CHUNK):
            filter_ = " or ".join(
                f"{field} eq {odata_string(v)}" for v in values[i : i + _OR_CHUNK]
            )
            params = {"$select": CUSTOMER_SELECT, "$filter": filter_}
            for entity in self.client.iter_collection(self._company_path("customers"), params):
                into[str(entity.get("number", ""))] = entity

    def _refresh_phone_index(self) -> None:
        """Bring the phone index up to date: everything the first time, then the customers
        modified since the last refresh (minus ``modified_overlap_seconds``). A deleted
        customer's keys stay (its number then finds nothing): harmless."""
        started = datetime.now(UTC)
        params = {"$select": "number,phoneNumber"}
        if self._phones_read_at is not None:
            since = self._phones_read_at - timedelta(seconds=self.settings.modified_overlap_seconds)
            params["$filter"] = f"lastModifiedDateTime gt {odata_datetime(since)}"
        rows = self.client.iter_collection(
            self._company_path("customers"), params, page_size=_INDEX_PAGE
        )
        for row in rows:
            no = str(row.get("number") or "")
            if not no:
                continue
            for key in self._phone_keys_of.pop(no, set()):
                self._phone_numbers.get(key, set()).discard(no)
            keys = suffix_keys(str(row.get("phoneNumber") or ""))
            if keys:
                self._phone_keys_of[no] = keys
                for key in keys:
                    self._phone_numbers.setdefault(key, set()).add(no)
        self._phones_read_at = started

    def problems(self) -> Sequence[SourceProblem]:
        """Sources that cannot be read (not published) and those not configured: the plan
        shows them as warnings."""
        configured_away = [
            SourceProblem(name, "erp.business_central.pages", reason)
            for name, reason in self._unavailable.items()
            if name not in self.settings.pages
        ]
        return (*configured_away, *self._problems)

    def check_connection(self) -> Sequence[ConnectionFinding]:
        """``ChecksConnection`` (``custsync validate``): get a token, find the environment and
        the company, read each configured source once and the reference sets a run reads.
        Errors (what stops every run) come with the option to check; an unavailable source
        is a warning naming the page and what custsync does without it. Never raises for
        what BC answers; secrets are never part of a message."""
        findings: list[ConnectionFinding] = []
        try:
            self.client.token()
        except (ConfigError, FatalError, RetriableError) as exc:
            text = str(exc)
            if isinstance(exc, ConfigError) or "AADSTS7000215" in text or "7000218" in text:
                option = "client_secret_env"  # no secret, or not the app's secret
            elif "AADSTS90002" in text or isinstance(exc, RetriableError):
                option = "tenant"  # no such tenant; or the token endpoint cannot be reached
            else:
                option = "client_id"
            return [ConnectionFinding(option, text)]
        try:
            self.company  # noqa: B018 - environment and company
        except ConfigError as exc:
            option = "url" if "environment" in str(exc) and "not found" in str(exc) else "company"
            return [ConnectionFinding(option, str(exc))]
        except BcHttpError as exc:
            return [ConnectionFinding("client_id" if exc.status in (401, 403) else "url", str(exc))]
        except (FatalError, RetriableError) as exc:
            return [ConnectionFinding("url", str(exc))]
        for name in _WHAT:
            if name not in self.settings.pages:
                continue
            try:
                rows = self._page_rows(name, self._probe_filter(name))
                if rows is not None:
                    next(rows, None)
            except BcHttpError as exc:
                self._mark_unavailable(name, self.settings.pages[name], exc)
            except (FatalError, RetriableError) as exc:
                findings.append(ConnectionFinding(f"pages.{name}", str(exc)))
        for name, reason in self._unavailable.items():
            if name in self.settings.pages:
                findings.append(
                    ConnectionFinding(f"pages.{name}", f"{reason}; {_WITHOUT[name]}", error=False)
                )
        for entity_set in ("countriesRegions", "paymentTerms", "paymentMethods", "taxAreas"):
            try:
                self.lookup_codes(entity_set)
            except (FatalError, RetriableError) as exc:
                findings.append(ConnectionFinding("client_id", str(exc)))
        return findings

    def _probe_filter(self, name: str) -> str | None:
        """The Customer Card is read for one number range only (a probe, not the table)."""
        if name != "customer_card":
            return None
        key = self.settings.pages[name].fields["no"]
        return f"{key} eq {odata_string('')}"


def _is_vat(row: Mapping[str, Any]) -> bool:
    """A ``taxAreas`` row that is a VAT Bus. Posting Group (``taxType`` VAT)."""
    return str(row.get("taxType") or "").strip().upper() == "VAT"


#: BC's standard country codes that are not ISO 3166-1 alpha-2 codes
_NOT_ISO = {"EL": "GR", "UK": "GB"}


def assumed_iso(code: str) -> str:
    """Without the Countries/Regions page: the ISO code a BC country code stands for when it
    is one (BC's standard codes are ISO codes, except EL for Greece); else blank."""
    if code in _NOT_ISO:
        return _NOT_ISO[code]
    if len(code) == 2 and pycountry.countries.get(alpha_2=code) is not None:
        return code
    return ""


def _template(row: Mapping[str, Any]) -> CustomerTemplate:
    values = {}
    for name in ERP_TEMPLATE_FIELDS:
        value = row.get(name)
        if value in (None, "", False):
            continue
        values[name] = bool(value) if name == "tax_liable" else str(value)
    return CustomerTemplate(
        code=str(row.get("code", "")),
        description=str(row.get("description", "") or ""),
        fields=values,
    )
