"""What a Business Central connector is pointed at: URL, company, credentials, sources.

URLs (the entry point ``bc``; the part after ``+`` picks the transport):

* ``bc://{tenant}/{environment}``: Business Central online,
  ``https://api.businesscentral.dynamics.com/v2.0/{tenant}/{environment}``, token from
  ``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token``.
* ``bc+https://host[:port]/path`` or ``bc+http://127.0.0.1:port/path``: the environment root
  given in full (on-premises, a proxy, the local BC double); ``token_url`` then says where
  tokens come from (default ``{scheme}://host:port/{tenant}/oauth2/v2.0/token``).

Query parameters of the URL are options too (``?company=CRONUS&client_id=...``); options given
to the factory win. The client secret is never an option: ``client_secret_env`` names the
environment variable that holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from custsync.engine.errors import ConfigError

__all__ = [
    "API_PAGE_DEFAULTS",
    "BC_ONLINE",
    "DEFAULT_SCOPE",
    "PAGE_DEFAULTS",
    "BcSettings",
    "PageSource",
    "parse_settings",
]

BC_ONLINE = "https://api.businesscentral.dynamics.com/v2.0"
LOGIN = "https://login.microsoftonline.com"
DEFAULT_SCOPE = "https://api.businesscentral.dynamics.com/.default"

#: for each source the standard API lacks: the field names of the published page (page 21
#: "Customer Card", "Countries/Regions", "Customer Templ. List"); a customer's own API page
#: names its fields in ``fields``
PAGE_DEFAULTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "customer_card": MappingProxyType(
            {
                "no": "No",
                "name_2": "Name_2",
                "contact": "ContactName",
                "gen_bus_posting_group": "Gen_Bus_Posting_Group",
                "customer_posting_group": "Customer_Posting_Group",
                "vat_bus_posting_group": "VAT_Bus_Posting_Group",
                "tax_area_code": "Tax_Area_Code",
                "language_code": "Language_Code",
            }
        ),
        "countries": MappingProxyType({"code": "Code", "iso_code": "ISO_Code", "name": "Name"}),
        "customer_templates": MappingProxyType(
            {
                "code": "Code",
                "description": "Description",
                "gen_bus_posting_group": "Gen_Bus_Posting_Group",
                "customer_posting_group": "Customer_Posting_Group",
                "vat_bus_posting_group": "VAT_Bus_Posting_Group",
                "tax_area_code": "Tax_Area_Code",
                "tax_liable": "Tax_Liable",
                "payment_terms_code": "Payment_Terms_Code",
                "payment_method_code": "Payment_Method_Code",
                "currency_code": "Currency_Code",
                "language_code": "Language_Code",
            }
        ),
    }
)

#: the same sources as a customer's own API page (a ``path`` with ``/``): API pages name their
#: fields in camelCase, so these are the defaults there (``fields`` overrides any of them)
API_PAGE_DEFAULTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "customer_card": MappingProxyType(
            {
                "no": "number",
                "name_2": "name2",
                "contact": "contact",
                "gen_bus_posting_group": "genBusPostingGroup",
                "customer_posting_group": "customerPostingGroup",
                "vat_bus_posting_group": "vatBusPostingGroup",
                "tax_area_code": "taxAreaCode",
                "language_code": "languageCode",
            }
        ),
        "countries": MappingProxyType({"code": "code", "iso_code": "isoCode", "name": "name"}),
        "customer_templates": MappingProxyType(
            {
                "code": "code",
                "description": "description",
                "gen_bus_posting_group": "genBusPostingGroup",
                "customer_posting_group": "customerPostingGroup",
                "vat_bus_posting_group": "vatBusPostingGroup",
                "tax_area_code": "taxAreaCode",
                "tax_liable": "taxLiable",
                "payment_terms_code": "paymentTermsCode",
                "payment_method_code": "paymentMethodCode",
                "currency_code": "currencyCode",
                "language_code": "languageCode",
            }
        ),
    }
)

_ALLOWED = frozenset(
    {
        "company",
        "company_country",
        "tenant",
        "client_id",
        "client_secret_env",
        "token_url",
        "scope",
        "page_size",
        "modified_overlap_seconds",
        "timeout_seconds",
        "requests_per_window",
        "window_seconds",
        "max_concurrent",
        "max_attempts",
        "retry_base_delay",
        "retry_max_delay",
        "batch_size",
        "journal",
        "pages",
    }
)


@dataclass(frozen=True, slots=True)
class PageSource:
    """Where one missing piece is read from: a path below the environment root
    (``{company}`` is the company name, quoted for OData; ``{company_id}`` its id) and the
    field names there. ``key`` is the field that holds the record's key (customer no. or
    code)."""

    name: str
    path: str
    fields: Mapping[str, str]

    def url_path(self, company_name: str, company_id: str) -> str:
        quoted = quote(company_name.replace("'", "''"), safe="")
        path = self.path
        if "/" not in path:  # a web service name: the published page's OData v4 URL
            path = f"ODataV4/Company('{{company}}')/{path}"
        return path.replace("{company}", quoted).replace("{company_id}", company_id)


@dataclass(frozen=True, slots=True)
class BcSettings:
    base_url: str  # the environment root: ...{tenant}/{environment}
    token_url: str
    tenant: str
    client_id: str
    client_secret_env: str
    company: str
    company_country: str = ""
    scope: str = DEFAULT_SCOPE
    page_size: int = 1000
    modified_overlap_seconds: float = 120.0
    timeout_seconds: float = 60.0
    requests_per_window: int = 6000
    window_seconds: float = 300.0
    max_concurrent: int = 5
    max_attempts: int = 6
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    batch_size: int = 100
    journal: str = ""
    pages: Mapping[str, PageSource] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def api_root(self) -> str:
        return f"{self.base_url}/api/v2.0"

    @property
    def display(self) -> str:
        """Where this connector points, for messages (no secret is ever part of it)."""
        return f"{self.base_url} company {self.company!r}"


def _number(options: Mapping[str, Any], name: str, default: float, *, integer: bool) -> Any:
    value = options.get(name, default)
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Business Central option {name}: expected a number, got {value!r}"
        ) from None
    if number < 0 or (number == 0 and name != "modified_overlap_seconds"):
        raise ConfigError(f"Business Central option {name}: must be positive, got {value!r}")
    return number


def _pages(raw: Any) -> dict[str, PageSource]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError("Business Central option pages: expected a mapping")
    pages: dict[str, PageSource] = {}
    for name, spec in raw.items():
        if name not in PAGE_DEFAULTS:
            raise ConfigError(
                f"Business Central option pages.{name}: unknown source (known: "
                f"{', '.join(PAGE_DEFAULTS)})"
            )
        if spec in (None, ""):
            continue
        if isinstance(spec, str):
            spec = {"path": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("path"), str):
            raise ConfigError(
                f"Business Central option pages.{name}: expected a web service name or "
                "{path: ..., fields: {...}}"
            )
        path = spec["path"].strip("/")
        fields = dict((API_PAGE_DEFAULTS if "/" in path else PAGE_DEFAULTS)[name])
        extra = spec.get("fields") or {}
        unknown = sorted(set(extra) - set(fields))
        if unknown:
            raise ConfigError(
                f"Business Central option pages.{name}.fields: unknown field(s) "
                f"{', '.join(unknown)} (known: {', '.join(fields)})"
            )
        fields.update({k: str(v) for k, v in extra.items()})
        pages[name] = PageSource(name, path, MappingProxyType(fields))
    return pages


def parse_settings(url: str, options: Mapping[str, Any]) -> BcSettings:
    """The settings of ``url`` plus ``options`` (ConfigError naming what is wrong)."""
    parts = urlsplit(url)
    scheme, _, transport = parts.scheme.partition("+")
    if scheme.lower() != "bc":
        raise ConfigError(f"not a Business Central URL: {url!r} (bc://tenant/environment)")
    merged: dict[str, Any] = dict(parse_qsl(parts.query))
    merged.update({k: v for k, v in options.items() if v is not None})
    unknown = sorted(set(merged) - _ALLOWED)
    if unknown:
        raise ConfigError(
            f"Business Central: unknown option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_ALLOWED))})"
        )
    segments = [s for s in parts.path.split("/") if s]
    if not transport:
        if not parts.netloc or len(segments) != 1:
            raise ConfigError(
                f"Business Central URL {url!r}: expected bc://<tenant>/<environment> "
                "(e.g. bc://contoso.onmicrosoft.com/Production)"
            )
        tenant = merged.get("tenant") or parts.netloc
        base = f"{BC_ONLINE}/{parts.netloc}/{segments[0]}"
        token_url = merged.get("token_url") or f"{LOGIN}/{tenant}/oauth2/v2.0/token"
    else:
        if transport not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"Business Central URL {url!r}: expected bc+https://host/path-to-environment"
            )
        root = f"{transport}://{parts.netloc}"
        base = root + ("/" + "/".join(segments) if segments else "")
        # .../v2.0/{tenant}/{environment}: the tenant is the segment after v2.0
        guessed = segments[segments.index("v2.0") + 1] if "v2.0" in segments[:-1] else ""
        tenant = merged.get("tenant") or guessed
        token_url = merged.get("token_url") or f"{root}/{tenant}/oauth2/v2.0/token"
    missing = [k for k in ("company", "client_id", "client_secret_env") if not merged.get(k)]
    if not tenant:
        missing.insert(0, "tenant")
    if missing:
        raise ConfigError(
            f"Business Central {base}: missing option(s) {', '.join(missing)} "
            "(erp.business_central in custsync.yaml, or ?name=value in the URL)"
        )
    return BcSettings(
        base_url=base,
        token_url=str(token_url),
        tenant=str(tenant),
        client_id=str(merged["client_id"]),
        client_secret_env=str(merged["client_secret_env"]),
        company=str(merged["company"]),
        company_country=str(merged.get("company_country") or ""),
        scope=str(merged.get("scope") or DEFAULT_SCOPE),
        page_size=_number(merged, "page_size", 1000, integer=True),
        modified_overlap_seconds=_number(merged, "modified_overlap_seconds", 120.0, integer=False),
        timeout_seconds=_number(merged, "timeout_seconds", 60.0, integer=False),
        requests_per_window=_number(merged, "requests_per_window", 6000, integer=True),
        window_seconds=_number(merged, "window_seconds", 300.0, integer=False),
        max_concurrent=_number(merged, "max_concurrent", 5, integer=True),
        max_attempts=_number(merged, "max_attempts", 6, integer=True),
        retry_base_delay=_number(merged, "retry_base_delay", 1.0, integer=False),
        retry_max_delay=_number(merged, "retry_max_delay", 60.0, integer=False),
        batch_size=min(100, _number(merged, "batch_size", 100, integer=True)),
        journal=str(merged.get("journal") or ""),
        pages=MappingProxyType(_pages(merged.get("pages"))),
    )
