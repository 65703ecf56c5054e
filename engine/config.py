"""The configuration file (``custsync.yaml``): schema, checks, and the typed :class:`Config`.

::

    # yaml-language-server: $schema=./schemas/config.schema.json
    erp:   {url: "sqlite:///erp.db"}
    state: {url: "sqlite:///custsync-state.db"}
    rules: [./my-rules]
    shops:
      - name: main
        shopify: {url: https://my-shop.myshopify.com, access_token_env: SHOPIFY_TOKEN}
        settings: {customer_import: all_customers}
        countries: [{iso_code: US, customer_template_code: US-RETAIL}]
        schedule: {import: "*/15 * * * *", export: "0 * * * *", retries: 3}

:func:`load_config` returns the config and every diagnostic (``path:line:col``). Relative
paths (rule folders, ``sqlite:///file.db``, ``files:./world``) are resolved against the
config file's folder. Access tokens never appear in the file, only the name of the
environment variable holding one; no message here echoes a URL or a token.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import pycountry
from croniter import croniter
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import ConfigError, UsageError
from .model import CountrySetup, ShopContext, ShopSettings, TaxArea
from .rules import vocabulary
from .rules.diagnostics import (
    Diagnostic,
    Severity,
    at,
    has_errors,
    raise_on_errors,
    sort_diagnostics,
)
from .rules.load import LoadedDocument, YamlSyntaxError, load_yaml_text
from .rules.validate import (
    SCHEMA_DIALECT,
    default_schema_diagnostics,
    did_you_mean,
    json_pointer,
    read_document,
    schema_diagnostics,
)

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_CONFIG_YAML",
    "DEFAULT_STATE_URL",
    "Config",
    "ConfigReport",
    "ScheduleConfig",
    "ShopConfig",
    "WorkersConfig",
    "check_shop_names",
    "config_file",
    "config_schema",
    "default_config",
    "is_loopback_host",
    "load_config",
    "load_config_text",
    "read_config",
    "require_config",
]

DEFAULT_API_VERSION = "2026-07"
DEFAULT_STATE_URL = "sqlite:///custsync-state.db"
DEFAULT_TIMEOUT_SECONDS = 30.0
BULK_MODES = ("auto", "always", "never")
#: a read of at least this many customers runs as a bulk operation (bulk_reads: auto)
DEFAULT_BULK_READ_THRESHOLD = 5000
#: a run creating (or updating) at least this many customers sends them by bulk mutation
#: (bulk_writes: auto): below it, one by one is about as fast
DEFAULT_BULK_WRITE_THRESHOLD = 250
DEFAULT_CONCURRENCY = 4
#: ``shopify:`` option in custsync.yaml -> the Shopify connector's keyword argument
CONNECTOR_OPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "max_attempts": "max_attempts",
        "retry_base_delay_seconds": "retry_base_delay",
        "retry_max_delay_seconds": "retry_max_delay",
        "page_size": "page_size",
        "lookup": "lookup",
        "bulk_reads": "bulk_reads",
        "bulk_read_threshold": "bulk_threshold",
        "bulk_writes": "bulk_writes",
        "bulk_write_threshold": "bulk_write_threshold",
        "concurrency": "concurrency",
        "poll_interval_seconds": "poll_interval",
        "max_poll_interval_seconds": "max_poll_interval",
    }
)
#: connector options only a writer takes (``plan`` opens readers)
WRITER_ONLY_OPTIONS = ("bulk_writes", "bulk_write_threshold", "concurrency")
DEFAULT_RETRIES = 3
DEFAULT_RETRY_BACKOFF_SECONDS = 30.0
DEFAULT_WORKER_QUEUE = "custsync"
DEFAULT_LEASE_RETRY_SECONDS = 15.0
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 3600.0
#: runs a record may fail in a row before it is parked on the attention list
DEFAULT_PARK_AFTER = 3
#: how far a run reads back before its cursor (docs/scheduling.md, "Which run picks up a change")
DEFAULT_OVERLAP_SECONDS = 300.0

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_API_VERSION_PATTERN = r"^(\d{4}-(01|04|07|10)|unstable)$"
_SECRET_KEYS = re.compile(r"(access_?token|token|password|secret|api_?key)$", re.IGNORECASE)
#: what a secret looks like in any text of the config (each with what it is called)
_SECRET_LOOKALIKES = (
    # Shopify tokens: admin API, custom app, private app, shared secret
    (re.compile(r"shp(?:at|ca|pa|ss)_[0-9A-Za-z]{6,}"), "a Shopify access token"),
    # a long hex key (a Shopify token without its prefix, an API key or secret)
    (re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])"), "a secret key"),
    # a URL with a password (user:password@host)
    (re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@"), "a URL with a password"),
)
_URL_WITH_PASSWORD = _SECRET_LOOKALIKES[-1][1]
#: a base64/random-looking secret: 32+ letters, digits and + / = _ ~ . - with upper case,
#: lower case and digits mixed (client secrets, API keys)
_RANDOM_SECRET = re.compile(r"(?<![^\s\"'=:,])[A-Za-z0-9+/=_~.-]{32,}(?![^\s\"',;])")


# ---------------------------------------------------------------------------------------------
# Typed config
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """Cron expressions per direction (None: not scheduled) and the retry policy."""

    import_cron: str | None = None
    export_cron: str | None = None
    retries: int = DEFAULT_RETRIES
    retry_backoff_seconds: float = DEFAULT_RETRY_BACKOFF_SECONDS
    #: a record failing this many runs in a row is parked on the attention list
    park_after: int = DEFAULT_PARK_AFTER


@dataclass(frozen=True, slots=True)
class ShopConfig:
    name: str
    shopify_url: str
    api_version: str = DEFAULT_API_VERSION
    #: name of the environment variable holding the Admin API access token ("" = none needed)
    access_token_env: str = ""
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    settings: ShopSettings = field(default_factory=ShopSettings)
    #: ISO 3166-1 alpha-2 code -> per-country setup
    country_setups: Mapping[str, CountrySetup] = field(default_factory=lambda: MappingProxyType({}))
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    #: the Shopify connector's tuning options set in the file, by the connector's names
    #: (:data:`CONNECTOR_OPTIONS`): retries, paging, look-ups, bulk reads and writes
    connector_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: name of the environment variable holding the app's client secret that Shopify signs
    #: webhooks with ("" = this shop's webhooks are refused)
    webhook_secret_env: str = ""
    #: the shop's myshopify domain (X-Shopify-Shop-Domain); "" = the host of ``shopify_url``
    shop_domain: str = ""
    #: a run reads the changes after (cursor - this): writes committed late, stamped before
    #: the previous run started, and a lagging Shopify search index are not lost
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS

    def shopify_options(self, *, writer: bool) -> dict[str, Any]:
        """Keyword arguments for the Shopify connector's ``open_reader`` (``writer`` False:
        without the options only a writer takes) or ``open_writer``."""
        options = {
            "api_version": self.api_version,
            "token_env": self.access_token_env or None,
            "timeout": self.timeout_seconds,
            **self.connector_options,
        }
        if not writer:
            for name in WRITER_ONLY_OPTIONS:
                options.pop(name, None)
        return options

    @property
    def domain(self) -> str:
        """The domain webhooks of this shop name (``shop_domain``, else the URL's host)."""
        if self.shop_domain:
            return self.shop_domain.lower()
        return (urlsplit(self.shopify_url).hostname or "").lower()

    def context(self) -> ShopContext:
        """The engine's view of this shop (:class:`~.model.ShopContext`)."""
        return ShopContext(
            name=self.name, settings=self.settings, country_setups=self.country_setups
        )


@dataclass(frozen=True, slots=True)
class WorkersConfig:
    """The ``workers:`` section: the Celery broker and queue settings (docs/scheduling.md).

    ``broker_url`` carries no password; ``broker_password_env`` names the environment
    variable holding it (read when connecting, never printed)."""

    broker_url: str
    broker_password_env: str = ""
    result_backend: str = ""
    queue: str = DEFAULT_WORKER_QUEUE
    #: shop name -> queue (shops not named here go to ``queue``)
    shop_queues: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: how long a task for a shop whose lease is held waits before it is tried again
    lease_retry_seconds: float = DEFAULT_LEASE_RETRY_SECONDS
    #: Redis only: an unacknowledged task goes back to the queue after this long
    visibility_timeout_seconds: float = DEFAULT_VISIBILITY_TIMEOUT_SECONDS
    #: Redis only: prefix of every key the queues use (a Redis shared with other users)
    redis_key_prefix: str = ""

    def queue_for(self, shop: str) -> str:
        return self.shop_queues.get(shop, self.queue)

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue the config names, the default first."""
        return tuple(dict.fromkeys([self.queue, *self.shop_queues.values()]))


@dataclass(frozen=True, slots=True)
class Config:
    erp_url: str
    state_url: str
    rule_dirs: tuple[Path, ...]
    shops: tuple[ShopConfig, ...]
    #: the config file (None for an embedded default); relative paths were resolved against
    #: its folder, ``base_dir``
    path: Path | None = None
    base_dir: Path | None = None
    #: options for the ERP connector (``erp.business_central``), passed to its factories
    erp_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: the Celery settings (None: no ``workers:`` section)
    workers: WorkersConfig | None = None

    def shop(self, name: str | None = None) -> ShopConfig:
        """The shop called ``name``; without a name, the only shop (ConfigError otherwise)."""
        names = [shop.name for shop in self.shops]
        if name is None:
            if len(self.shops) == 1:
                return self.shops[0]
            raise ConfigError(f"the config has several shops; name one of: {', '.join(names)}")
        check_shop_names([name], names)
        return next(shop for shop in self.shops if shop.name == name)

    def select_shops(self, names: Sequence[str]) -> list[ShopConfig]:
        """The shops called ``names`` (every shop when none is named), in config order;
        UsageError for a name the config does not have (:func:`check_shop_names`)."""
        check_shop_names(names, [shop.name for shop in self.shops])
        return [shop for shop in self.shops if not names or shop.name in names]


def check_shop_names(wanted: Iterable[str], configured: Sequence[str]) -> None:
    """UsageError (exit 64) when a ``--shop`` names no configured shop: every command says
    it the same way, with a suggestion for a near miss."""
    unknown = [name for name in dict.fromkeys(wanted) if name not in configured]
    if unknown:
        raise UsageError(
            f"--shop {', '.join(unknown)}: no such shop{did_you_mean(unknown[0], configured)}; "
            f"configured: {', '.join(configured) or '(none)'}"
        )


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """Everything :func:`read_config` found: the config (None on errors), the diagnostics,
    and the rule folders it names (resolved, even when other parts are invalid)."""

    config: Config | None
    diagnostics: list[Diagnostic]
    rule_dirs: tuple[Path, ...] = ()


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------


def _settings_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for item in dataclasses.fields(ShopSettings):
        default = item.default
        fact = vocabulary.FACTS.get(f"settings.{item.name}")
        prop: dict[str, Any] = {
            "type": "boolean" if isinstance(default, bool) else "string",
            "default": default,
        }
        if fact is not None:
            prop["description"] = fact.description
            if fact.values:
                prop["enum"] = list(fact.values)
        properties[item.name] = prop
    return {
        "title": "Shop settings",
        "description": "Behaviour switches of one shop; the rules read them as settings.*.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


def _cron(description: str) -> dict[str, Any]:
    return {
        "description": f"{description} (cron: minute hour day month weekday; quote it)",
        "type": ["string", "null"],
        "examples": ["*/15 * * * *", "0 * * * *", "@hourly"],
    }


def _business_central_schema() -> dict[str, Any]:
    """``erp.business_central``: the options of a ``bc://`` ERP (docs/business-central.md)."""
    text = {"type": "string", "minLength": 1}
    positive = {"type": "number", "exclusiveMinimum": 0}
    page = {
        "description": (
            "A published page's web service name (e.g. Customer), or {path, fields} for a "
            "page of your own (path below the environment root; {company} and {company_id} "
            "are replaced)."
        ),
        "oneOf": [
            text,
            {
                "type": "object",
                "required": ["path"],
                "additionalProperties": False,
                "properties": {
                    "path": text,
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        ],
    }
    return {
        "description": "Business Central options (for a bc:// ERP URL).",
        "type": "object",
        "additionalProperties": False,
        "required": ["company", "client_id", "client_secret_env"],
        "properties": {
            "company": {**text, "description": "Company name (case-sensitive) or id."},
            "company_country": {
                **text,
                "description": "The company's country code (default: companyInformation's).",
            },
            "client_id": {**text, "description": "The app registration's client ID."},
            "client_secret_env": {
                **text,
                "description": "Name of the environment variable holding the client secret.",
                "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            },
            "tenant": {**text, "description": "Entra tenant id or domain (default: the URL's)."},
            "token_url": {**text, "description": "OAuth token endpoint (default: Entra's)."},
            "scope": text,
            "pages": {
                "description": "Sources of what the standard API lacks.",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "customer_card": page,
                    "countries": page,
                    "customer_templates": page,
                },
            },
            "page_size": {"type": "integer", "minimum": 1, "maximum": 20000, "default": 1000},
            "modified_overlap_seconds": {"type": "number", "minimum": 0, "default": 120},
            "timeout_seconds": {**positive, "default": 60},
            "requests_per_window": {"type": "integer", "minimum": 1, "default": 6000},
            "window_seconds": {**positive, "default": 300},
            "max_concurrent": {"type": "integer", "minimum": 1, "maximum": 5, "default": 5},
            "max_attempts": {"type": "integer", "minimum": 1, "default": 6},
            "retry_base_delay": {**positive, "default": 1},
            "retry_max_delay": {**positive, "default": 60},
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 100, "default": 100},
            "journal": {
                **text,
                "description": "The create journal file (relative to the config file).",
            },
        },
    }


def config_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``custsync.yaml``; settings come from ShopSettings and the
    vocabulary's ``settings.*`` facts."""
    text = {"type": "string"}
    return {
        "$schema": SCHEMA_DIALECT,
        "$comment": "Generated by `python -m custsync.engine.cli.schemagen --write-schema`.",
        "title": "custsync configuration",
        "description": (
            "Connectors, rule folders and shops. Name this schema in the file with "
            "'# yaml-language-server: $schema=<path>/config.schema.json'. Relative paths are "
            "relative to the config file."
        ),
        "type": "object",
        "required": ["erp", "shops"],
        "additionalProperties": False,
        "properties": {
            "$schema": text,
            "erp": {
                "description": "Where the ERP customers are.",
                "type": "object",
                "required": ["url"],
                "additionalProperties": False,
                "properties": {
                    "url": {
                        "description": "ERP connector URL.",
                        "type": "string",
                        "minLength": 1,
                        "examples": [
                            "sqlite:///erp.db",
                            "postgresql+psycopg://user@localhost/erp",
                            "files:./world",
                            "bc://contoso.onmicrosoft.com/Production",
                        ],
                    },
                    "business_central": _business_central_schema(),
                },
            },
            "state": {
                "description": "Where links, cursors and the run log are kept.",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "url": {
                        "description": "State store URL (SQLite file or PostgreSQL).",
                        "type": "string",
                        "minLength": 1,
                        "default": DEFAULT_STATE_URL,
                    }
                },
            },
            "rules": {
                "description": "User rule folders, applied in order over the shipped rules.",
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "examples": [["./my-rules"]],
            },
            "workers": {"$ref": "#/$defs/workers"},
            "shops": {
                "description": "The Shopify stores kept in sync.",
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/shop"},
            },
        },
        "$defs": {
            "shop": {
                "type": "object",
                "required": ["name", "shopify"],
                "additionalProperties": False,
                "properties": {
                    "name": {
                        "description": "Short unique name (used in state, logs, --shop).",
                        "type": "string",
                        "pattern": _NAME_PATTERN,
                        "x-form": "letters, digits, '-', '_' and '.', e.g. main",
                    },
                    "shopify": {"$ref": "#/$defs/shopify"},
                    "settings": _settings_schema(),
                    "countries": {
                        "description": "Per-country setups (behaviour.md §1).",
                        "type": "array",
                        "items": {"$ref": "#/$defs/country"},
                    },
                    "schedule": {"$ref": "#/$defs/schedule"},
                    "sync": {"$ref": "#/$defs/sync"},
                },
            },
            "shopify": {
                "description": "The store and how to reach it.",
                "type": "object",
                "required": ["url"],
                "additionalProperties": False,
                "properties": {
                    "url": {
                        "description": "Store URL, a local sandbox, or a world in files.",
                        "type": "string",
                        "minLength": 1,
                        "examples": [
                            "https://my-shop.myshopify.com",
                            "http://127.0.0.1:8765",
                            "files:./world",
                        ],
                    },
                    "api_version": {
                        "description": "Admin API version.",
                        "type": "string",
                        "pattern": _API_VERSION_PATTERN,
                        "x-form": "YYYY-01/04/07/10 or unstable, e.g. 2026-07",
                        "default": DEFAULT_API_VERSION,
                    },
                    "access_token_env": {
                        "description": (
                            "Name of the environment variable that holds the Admin API access "
                            "token (never the token itself)."
                        ),
                        "type": "string",
                        "pattern": _ENV_PATTERN,
                        "x-form": "an environment variable name, e.g. SHOPIFY_TOKEN",
                        "examples": ["SHOPIFY_TOKEN"],
                    },
                    "webhook_secret_env": {
                        "description": (
                            "Name of the environment variable that holds the app's client "
                            "secret, which Shopify signs webhooks with (never the secret "
                            "itself). Without it, webhooks for this shop are refused."
                        ),
                        "type": "string",
                        "pattern": _ENV_PATTERN,
                        "x-form": "an environment variable name, e.g. SHOPIFY_WEBHOOK_SECRET",
                        "examples": ["SHOPIFY_WEBHOOK_SECRET"],
                    },
                    "shop_domain": {
                        "description": (
                            "The shop's myshopify.com domain, as webhooks name it in "
                            "X-Shopify-Shop-Domain (default: the host of url)."
                        ),
                        "type": "string",
                        "pattern": r"^[A-Za-z0-9][A-Za-z0-9.-]*$",
                        "examples": ["my-shop.myshopify.com"],
                    },
                    "timeout_seconds": {
                        "description": "HTTP timeout per request.",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 600,
                        "default": DEFAULT_TIMEOUT_SECONDS,
                    },
                    "max_attempts": {
                        "description": (
                            "Tries per request on THROTTLED, 429, 5xx and transport errors "
                            "(the first try included) before the record fails."
                        ),
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 20,
                        "default": 6,
                    },
                    "retry_base_delay_seconds": {
                        "description": "First retry delay; it doubles per retry (with jitter).",
                        "type": "number",
                        "minimum": 0,
                        "maximum": 600,
                        "default": 0.5,
                    },
                    "retry_max_delay_seconds": {
                        "description": "Longest delay between two tries.",
                        "type": "number",
                        "minimum": 0,
                        "maximum": 3600,
                        "default": 30,
                    },
                    "page_size": {
                        "description": (
                            "Customers per page when reading page by page, and per request "
                            "when reading customers by id."
                        ),
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 250,
                        "default": 250,
                    },
                    "lookup": {
                        "description": (
                            "How a customer is looked up by e-mail or phone: identifier "
                            "(customerByIdentifier: exact, current right after a write) or "
                            "search (customers(query:), re-checked for an exact match)."
                        ),
                        "enum": ["identifier", "search"],
                        "default": "identifier",
                    },
                    "bulk_reads": {
                        "description": (
                            "Read customers through a bulk operation: auto (from "
                            "bulk_read_threshold customers), always, never."
                        ),
                        "enum": list(BULK_MODES),
                        "default": "auto",
                    },
                    "bulk_read_threshold": {
                        "description": "Customers from which a read uses a bulk operation.",
                        "type": "integer",
                        "minimum": 1,
                        "default": DEFAULT_BULK_READ_THRESHOLD,
                    },
                    "bulk_writes": {
                        "description": (
                            "Send new and updated customers by bulk mutation: auto (from "
                            "bulk_write_threshold creates, or updates, in a run), always, "
                            "never (one by one)."
                        ),
                        "enum": list(BULK_MODES),
                        "default": "auto",
                    },
                    "bulk_write_threshold": {
                        "description": (
                            "Creates (updates) in a run from which they go by bulk mutation."
                        ),
                        "type": "integer",
                        "minimum": 1,
                        "default": DEFAULT_BULK_WRITE_THRESHOLD,
                    },
                    "concurrency": {
                        "description": (
                            "Creates (and a bulk batch's first addresses) in flight when "
                            "sent one by one."
                        ),
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 16,
                        "default": DEFAULT_CONCURRENCY,
                    },
                    "poll_interval_seconds": {
                        "description": (
                            "First wait before asking for a bulk operation's status; it "
                            "doubles up to max_poll_interval_seconds."
                        ),
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 600,
                        "default": 1,
                    },
                    "max_poll_interval_seconds": {
                        "description": "Longest wait between two bulk operation status polls.",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 3600,
                        "default": 10,
                    },
                },
            },
            "country": {
                "description": "Setup for one country (ISO 3166-1 alpha-2).",
                "type": "object",
                "required": ["iso_code"],
                "additionalProperties": False,
                "properties": {
                    "iso_code": {
                        "description": "ISO 3166-1 alpha-2 code in capitals, e.g. US.",
                        "type": "string",
                        "examples": ["US", "DE", "GB"],
                    },
                    "default_customer_no": {
                        "description": "Sell-to/bill-to customer for orders shipped here.",
                        "type": "string",
                        "default": "",
                    },
                    "customer_template_code": {
                        "description": "Template for customers created with an address here.",
                        "type": "string",
                        "default": "",
                    },
                    "tax_areas": {
                        "description": "Tax areas; also the county code <-> name table.",
                        "type": "array",
                        "items": {"$ref": "#/$defs/tax_area"},
                    },
                },
            },
            "tax_area": {
                "type": "object",
                "required": ["county"],
                "additionalProperties": False,
                "properties": {
                    "county": {"description": "County/province name.", **text},
                    "county_code": {"description": "Its code.", **text, "default": ""},
                    "tax_area_code": {"description": "ERP tax area.", **text, "default": ""},
                    "tax_liable": {"type": "boolean", "default": False},
                    "vat_bus_posting_group": {**text, "default": ""},
                },
            },
            "workers": {
                "description": (
                    "Celery workers (`custsync worker`, `--executor celery`): needs "
                    "`pip install 'custsync[celery]'` and a PostgreSQL state database."
                ),
                "type": "object",
                "required": ["broker_url"],
                "additionalProperties": False,
                "properties": {
                    "broker_url": {
                        "description": (
                            "Broker URL without its password (RabbitMQ amqp:// recommended, "
                            "Redis redis:// supported)."
                        ),
                        "type": "string",
                        "pattern": "^(amqps?|pyamqp|redis|rediss)://",
                        "x-form": "an amqp:// or redis:// URL, e.g. amqp://custsync@rabbitmq/custsync",
                        "examples": [
                            "amqp://custsync@rabbitmq.internal:5672/custsync",
                            "redis://127.0.0.1:6379/0",
                        ],
                    },
                    "broker_password_env": {
                        "description": "Environment variable holding the broker password.",
                        "type": "string",
                        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                        "examples": ["CUSTSYNC_BROKER_PASSWORD"],
                    },
                    "result_backend": {
                        "description": "Optional Celery result backend URL (not needed).",
                        "type": "string",
                    },
                    "queue": {
                        "description": "The queue jobs are sent to.",
                        "type": "string",
                        "pattern": _NAME_PATTERN,
                        "default": DEFAULT_WORKER_QUEUE,
                    },
                    "shop_queues": {
                        "description": "Shop name -> queue, for shops routed elsewhere.",
                        "type": "object",
                        "additionalProperties": {"type": "string", "pattern": _NAME_PATTERN},
                    },
                    "lease_retry_seconds": {
                        "description": "Delay before a task for a busy shop is tried again.",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "default": DEFAULT_LEASE_RETRY_SECONDS,
                    },
                    "visibility_timeout_seconds": {
                        "description": (
                            "Redis broker: an unacknowledged task (its worker died) is "
                            "delivered again after this long; longer than your longest run."
                        ),
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "default": DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
                    },
                    "redis_key_prefix": {
                        "description": (
                            "Redis broker: a prefix for every key of custsync's queues, to "
                            "share a Redis database with other applications."
                        ),
                        "type": "string",
                        "pattern": "^[A-Za-z0-9_.:-]*$",
                        "examples": ["custsync:"],
                    },
                },
            },
            "sync": {
                "description": "How `custsync sync` and `schedule` read this shop's changes.",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "overlap_seconds": {
                        "description": (
                            "A run reads the changes made after the last successful run's "
                            "start minus this many seconds: longer than the longest ERP write "
                            "transaction, the clock difference between the ERP and custsync, "
                            "and Shopify's search index lag. Records read again are recognised "
                            "as unchanged."
                        ),
                        "type": "number",
                        "minimum": 0,
                        "default": DEFAULT_OVERLAP_SECONDS,
                    },
                },
            },
            "schedule": {
                "description": "When `custsync schedule` runs this shop.",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "import": _cron("Import Shopify -> ERP"),
                    "export": _cron("Export ERP -> Shopify"),
                    "retries": {
                        "description": "Retries of a failed run.",
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 100,
                        "default": DEFAULT_RETRIES,
                    },
                    "retry_backoff_seconds": {
                        "description": "First pause before a retry (doubles each time).",
                        "type": "number",
                        "minimum": 0,
                        "default": DEFAULT_RETRY_BACKOFF_SECONDS,
                    },
                    "park_after": {
                        "description": (
                            "A record that failed this many runs in a row is parked on the "
                            "attention list: it stops holding its direction's cursor "
                            "(custsync attention list). A failure that cannot go away by "
                            "trying again (a link conflict, values the target refuses) is "
                            "parked at once."
                        ),
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1000,
                        "default": DEFAULT_PARK_AFTER,
                    },
                },
            },
        },
    }


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(config_schema())


def _masked(diagnostics: list[Diagnostic], secrets: set[str]) -> list[Diagnostic]:
    """``diagnostics`` with every text that looks like a secret shown as ``***`` (a check
    that quotes the value, such as "rule folder ... does not exist", must not echo it)."""
    if not secrets:
        return diagnostics
    out = []
    for diagnostic in diagnostics:
        message = diagnostic.message
        for secret in secrets:
            message = message.replace(secret, "***")
        out.append(dataclasses.replace(diagnostic, message=message))
    return out


def _secret_lookalike(text: str) -> str:
    """What ``text`` looks like when it looks like a secret (a token, a key, a URL with a
    password), else ""."""
    for pattern, what in _SECRET_LOOKALIKES:
        if pattern.search(text):
            return what
    for match in _RANDOM_SECRET.finditer(text):
        token = match.group()
        if (
            any(c.isupper() for c in token)
            and any(c.islower() for c in token)
            and sum(c.isdigit() for c in token) >= 4
            and not ("/" in token and ("." in token or token.startswith(("/", "~"))))  # a path
        ):
            return "a secret key"
    return ""


def _rewrite(doc: LoadedDocument, error: ValidationError) -> list[Diagnostic] | None:
    """Keys that look like secrets get their own message (and their value is never shown)."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, Mapping):
        return None
    secrets = [str(key) for key in error.instance if _SECRET_KEYS.search(str(key))]
    if not secrets:
        return None
    pointer = json_pointer(error.absolute_path)
    out = [
        at(
            doc,
            f"{pointer}/{key}",
            "secret-in-file",
            f"{key!r}: secrets do not belong in the config file; put the token in an "
            "environment variable and name that variable with access_token_env",
            key=True,
        )
        for key in secrets
    ]
    others = default_schema_diagnostics(doc, _validator(), error)
    return out + [d for d in others if d.pointer not in {f"{pointer}/{k}" for k in secrets}]


# ---------------------------------------------------------------------------------------------
# Semantic checks (tolerant of parts the schema rejected)
# ---------------------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


#: codes people write that are not ISO 3166-1 alpha-2 (UK is GB; EL is Greece in EU/ERP usage)
_NOT_ISO = {"UK": "GB", "EL": "GR"}


def _iso_hint(value: str) -> str:
    if value.upper() in _NOT_ISO:
        return f" (did you mean {_NOT_ISO[value.upper()]!r}?)"
    try:
        found = pycountry.countries.lookup(value)
    except LookupError:
        return ""
    return f" (did you mean {found.alpha_2!r}?)"


_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine (plain http is allowed only there: the sandbox)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _store_url_problem(url: str) -> tuple[str, str] | None:
    """(code, message) of what is wrong with an http(s) store URL, as the Shopify connector
    would find it only at the first request; None when it is fine."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - reading it checks it
    except ValueError as exc:  # a port that is no number or out of range, a broken [IPv6]
        return "url", f"not a valid URL ({exc})"
    if not host:
        return "url", "the URL has no host (e.g. https://YOUR-SHOP.myshopify.com)"
    if parts.username or parts.password:
        return (
            "secret-in-file",
            "the URL holds credentials; leave them out and name the token's environment "
            "variable in access_token_env",
        )
    if parts.scheme.lower() == "http" and not is_loopback_host(host):
        return (
            "url",
            f"plain http to {host} would send the access token unencrypted; use https:// "
            "(http:// is only for the local sandbox on 127.0.0.1 or localhost)",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return (
            "url",
            "the shop's address only, without a path or query (custsync adds "
            "/admin/api/VERSION/graphql.json)",
        )
    return None


def _scheme(url: str) -> str | None:
    """``postgresql+psycopg://...`` -> ``postgresql``; None when there is no scheme."""
    found = re.match(r"^([A-Za-z][A-Za-z0-9.+-]*):", url)
    return found.group(1).split("+", 1)[0].lower() if found else None


@lru_cache(maxsize=1)
def _erp_schemes() -> frozenset[str]:
    """URL schemes of the installed ERP connectors (entry points); empty if none found."""
    from .registry import ERP_GROUP

    return frozenset(entry.name for entry in entry_points(group=ERP_GROUP))


class _ConfigChecker:
    def __init__(self, doc: LoadedDocument, base_dir: Path) -> None:
        self.doc = doc
        self.base_dir = base_dir
        self.out: list[Diagnostic] = []
        #: texts that look like secrets: no message may show them
        self.secret_values: set[str] = set()

    def add(self, pointer: str, code: str, message: str, *, warning: bool = False) -> None:
        severity = Severity.WARNING if warning else Severity.ERROR
        self.out.append(at(self.doc, pointer, code, message, severity))

    def run(self) -> list[Diagnostic]:
        data = _mapping(self.doc.data)
        self.database_urls(data)
        self.business_central(data)
        for index, folder in enumerate(_list(data.get("rules"))):
            if isinstance(folder, str) and folder:
                path = _resolve_path(folder, self.base_dir)
                if not path.exists():
                    self.add(f"/rules/{index}", "io", f"rule folder {folder!r} does not exist")
                elif not path.is_dir() and path.suffix not in (".yaml", ".yml"):
                    self.add(f"/rules/{index}", "io", f"{folder!r} is not a folder")
        names: dict[str, int] = {}
        for index, shop in enumerate(_list(data.get("shops"))):
            shop = _mapping(shop)
            pointer = f"/shops/{index}"
            name = shop.get("name")
            if isinstance(name, str):
                if name in names:
                    self.add(
                        f"{pointer}/name",
                        "duplicate-shop",
                        f"shop name {name!r} is already used by shops/{names[name]}",
                    )
                names.setdefault(name, index)
            self.shopify(_mapping(shop.get("shopify")), f"{pointer}/shopify")
            self.settings(_mapping(shop.get("settings")), f"{pointer}/settings")
            self.countries(_list(shop.get("countries")), f"{pointer}/countries")
            self.schedule(_mapping(shop.get("schedule")), f"{pointer}/schedule")
        self.workers(_mapping(data.get("workers")), names)
        self.secrets(self.doc.data, ())  # after the checks with a more specific message
        return self.out

    def workers(self, workers: Mapping[str, Any], shops: Mapping[str, int]) -> None:
        url = workers.get("broker_url")
        if isinstance(url, str) and url:
            try:
                password = urlsplit(url).password
            except ValueError as exc:
                self.add("/workers/broker_url", "url", f"not a valid URL ({exc})")
                password = None
            if password:
                self.add(
                    "/workers/broker_url",
                    "secret-in-config",
                    "the broker URL contains a password: leave it out and name the "
                    "environment variable holding it in workers.broker_password_env",
                )
        for shop in _mapping(workers.get("shop_queues")):
            if shop not in shops:
                self.add(
                    f"/workers/shop_queues/{shop}",
                    "unknown-shop",
                    f"no shop named {shop!r}; the config has: {', '.join(shops) or '(none)'}",
                )

    def shopify(self, shopify: Mapping[str, Any], pointer: str) -> None:
        env = shopify.get("access_token_env")
        url = shopify.get("url")
        if isinstance(url, str) and url.lower().startswith("https://") and not env:
            self.add(
                pointer,
                "missing-token-env",
                "a store reached over https needs access_token_env (the name of the "
                "environment variable holding the Admin API access token)",
            )
        if isinstance(url, str) and not re.match(r"^(https?://|files:)", url, re.IGNORECASE):
            self.add(
                f"{pointer}/url",
                "url",
                "expected an https:// store URL, an http:// sandbox URL or files:FOLDER",
            )
        elif isinstance(url, str) and url.lower().startswith("files:"):
            folder = url[len("files:") :]
            if not folder.removeprefix("//").strip():  # as the files connector reads it
                self.add(f"{pointer}/url", "url", "files: names no folder (e.g. files:./world)")
        elif isinstance(url, str):
            problem = _store_url_problem(url)
            if problem is not None:
                self.add(f"{pointer}/url", *problem)

    def secrets(self, value: Any, path: tuple[Any, ...]) -> None:
        """Every text of the file that looks like a secret is an error at its place; the
        message says what it looks like, never the value (README "Security")."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not _SECRET_KEYS.search(str(key)):  # those the schema check reports
                    self.secrets(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.secrets(item, (*path, index))
        elif isinstance(value, str):
            pointer = json_pointer(path)
            what = _secret_lookalike(value)
            if what:
                self.secret_values.add(value)
            if what and not any(
                d.pointer == pointer and d.code == "secret-in-file" for d in self.out
            ):
                fix = (
                    "leave the password out of the URL (PostgreSQL reads it from PGPASSWORD "
                    "or ~/.pgpass)"
                    if what == _URL_WITH_PASSWORD
                    else "put it in an environment variable and write that variable's name "
                    "here (e.g. access_token_env: SHOPIFY_TOKEN)"
                )
                self.add(
                    pointer,
                    "secret-in-file",
                    f"this looks like {what}; secrets do not belong in the config file: {fix}",
                )

    def database_urls(self, data: Mapping[str, Any]) -> None:
        """The ERP URL needs an installed connector; the state store is SQLite or
        PostgreSQL (the schema only knows they are texts)."""
        erp_url = _mapping(data.get("erp")).get("url")
        if isinstance(erp_url, str) and erp_url:
            scheme = _scheme(erp_url)
            known = _erp_schemes()
            if scheme is not None and known and scheme not in known:
                self.add(
                    "/erp/url",
                    "url",
                    f"no ERP connector for {scheme + ':'!r} URLs; installed: "
                    f"{', '.join(sorted(known))} (e.g. sqlite:///erp.db)",
                )
            elif scheme is None:
                self.add("/erp/url", "url", "expected a URL such as sqlite:///erp.db")
            elif scheme == "bc":
                if "business_central" not in _mapping(data.get("erp")) and "?" not in erp_url:
                    self.add(
                        "/erp",
                        "required",
                        "a Business Central ERP needs erp.business_central (company, "
                        "client_id, client_secret_env): see docs/business-central.md",
                    )
            else:
                self.database_port("/erp/url", erp_url)
        state_url = _mapping(data.get("state")).get("url")
        if (
            isinstance(state_url, str)
            and state_url
            and _scheme(state_url) not in ("sqlite", "postgresql")
        ):
            self.add(
                "/state/url",
                "url",
                "the state store is a SQLite or PostgreSQL database: expected "
                "sqlite:///FILE or postgresql+psycopg://USER@HOST/DATABASE",
            )
        elif isinstance(state_url, str) and state_url:
            self.database_port("/state/url", state_url)

    def business_central(self, data: Mapping[str, Any]) -> None:
        """Warn when a Business Central ERP lacks a source the shops' settings need (BC's
        standard API has no Name 2, Contact, ISO country codes or customer templates)."""
        erp = _mapping(data.get("erp"))
        url = erp.get("url")
        if not isinstance(url, str) or _scheme(url) != "bc":
            return
        pages = _mapping(_mapping(erp.get("business_central")).get("pages"))
        pointer = "/erp/business_central" if "business_central" in erp else "/erp"
        defaults = ShopSettings()
        for index, shop in enumerate(_list(data.get("shops"))):
            shop = _mapping(shop)
            name = shop.get("name", index)
            settings = _mapping(shop.get("settings"))
            needs = [
                f"{key} {value!r} needs {what}"
                for key, what in (("name_2_source", "Name 2"), ("contact_source", "Contact"))
                if (value := settings.get(key, getattr(defaults, key))) != "none"
            ]
            if needs and not pages.get("customer_card"):
                self.add(
                    pointer,
                    "bc-source",
                    f"shop {name}: {'; '.join(needs)}, which Business Central's API lacks: "
                    "without pages.customer_card (the published Customer Card or your own "
                    "API page) they are not written, and each create and plan says so",
                    warning=True,
                )
            templates = settings.get("customer_template_code") or any(
                _mapping(c).get("customer_template_code") for c in _list(shop.get("countries"))
            )
            if templates and not pages.get("customer_templates"):
                self.add(
                    pointer,
                    "bc-source",
                    f"shop {name}: customer templates are used, but Business Central's API "
                    "has none: without pages.customer_templates creates get BC's own "
                    "defaults (each create says so)",
                    warning=True,
                )
        if not pages.get("countries"):
            self.add(
                pointer,
                "bc-source",
                "Business Central's API has no ISO country codes: without pages.countries "
                "custsync takes a BC country code that is an ISO code as that ISO code (and EL "
                "as GR, UK as GB); a code of your own is not mapped and its customers are "
                "skipped with that reason",
                warning=True,
            )

    def database_port(self, pointer: str, url: str) -> None:
        """A port that is no number (or a broken [IPv6] host): the database connector's
        URL parser fails on it with a message that names neither URL."""
        try:
            urlsplit(url).port  # noqa: B018 - reading it checks it
        except ValueError as exc:
            self.add(pointer, "url", f"not a valid URL ({exc})")

    def settings(self, settings: Mapping[str, Any], pointer: str) -> None:
        if (
            settings.get("shopify_can_update_customers") is True
            and settings.get("can_update_shopify_customers") is True
        ):
            self.add(
                f"{pointer}/can_update_shopify_customers",
                "update-flags",
                "shopify_can_update_customers and can_update_shopify_customers are both true; "
                "choose one direction for updates of linked customers",
            )

    def countries(self, countries: list[Any], pointer: str) -> None:
        seen: dict[str, int] = {}
        for index, country in enumerate(countries):
            country = _mapping(country)
            child = f"{pointer}/{index}"
            code = country.get("iso_code")
            if isinstance(code, bool):
                continue  # the schema reports it (NO read as false)
            if isinstance(code, str):
                if pycountry.countries.get(alpha_2=code) is None or code != code.upper():
                    self.add(
                        f"{child}/iso_code",
                        "iso-code",
                        f"{code!r} is not an ISO 3166-1 alpha-2 country code (two capitals, "
                        f"e.g. US){_iso_hint(code)}",
                    )
                elif code in seen:
                    self.add(
                        f"{child}/iso_code",
                        "duplicate-country",
                        f"country {code} is already set up at {pointer}/{seen[code]}",
                    )
                seen.setdefault(code, index)
            self.tax_areas(_list(country.get("tax_areas")), f"{child}/tax_areas")

    def tax_areas(self, rows: list[Any], pointer: str) -> None:
        for key in ("county", "county_code"):
            seen: dict[str, int] = {}
            for index, row in enumerate(rows):
                value = _mapping(row).get(key)
                if not isinstance(value, str) or not value:
                    continue
                if value in seen:
                    self.add(
                        f"{pointer}/{index}/{key}",
                        "duplicate-county",
                        f"{key} {value!r} is already in {pointer}/{seen[value]}; county lookups "
                        "use the first row",
                        warning=True,
                    )
                seen.setdefault(value, index)

    def schedule(self, schedule: Mapping[str, Any], pointer: str) -> None:
        for direction in ("import", "export"):
            expression = schedule.get(direction)
            if isinstance(expression, str) and expression and not croniter.is_valid(expression):
                self.add(
                    f"{pointer}/{direction}",
                    "cron",
                    f"{expression!r} is not a cron expression (minute hour day month weekday, "
                    "e.g. '*/15 * * * *')",
                )


# ---------------------------------------------------------------------------------------------
# Building the typed config
# ---------------------------------------------------------------------------------------------


def _resolve_path(text: str, base_dir: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _resolve_url(url: str, base_dir: Path) -> str:
    """Relative SQLite files and ``files:`` folders are relative to the config file."""
    scheme, sep, rest = url.partition(":")
    if not sep:
        return url
    if scheme.split("+", 1)[0].lower() == "sqlite" and rest.startswith("///"):
        target, query_sep, query = rest[3:].partition("?")
        if target and target != ":memory:" and not target.startswith("/"):
            return f"{scheme}:///{_resolve_path(target, base_dir)}{query_sep}{query}"
        return url
    if scheme.lower() == "files" and not rest.startswith("/"):
        return f"files:{_resolve_path(rest, base_dir)}"
    return url


def _build(data: Mapping[str, Any], base_dir: Path, path: Path | None) -> Config:
    shops = []
    for shop in data["shops"]:
        shopify = shop["shopify"]
        settings = ShopSettings(**dict(shop.get("settings") or {}))
        setups = {
            country["iso_code"]: CountrySetup(
                iso_code=country["iso_code"],
                default_customer_no=country.get("default_customer_no") or "",
                customer_template_code=country.get("customer_template_code") or "",
                tax_areas=tuple(TaxArea(**row) for row in country.get("tax_areas") or ()),
            )
            for country in shop.get("countries") or ()
        }
        schedule = shop.get("schedule") or {}
        shops.append(
            ShopConfig(
                name=shop["name"],
                shopify_url=_resolve_url(shopify["url"], base_dir),
                api_version=shopify.get("api_version", DEFAULT_API_VERSION),
                access_token_env=shopify.get("access_token_env", ""),
                webhook_secret_env=shopify.get("webhook_secret_env", ""),
                shop_domain=shopify.get("shop_domain", ""),
                timeout_seconds=float(shopify.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
                connector_options=MappingProxyType(
                    {
                        option: shopify[key]
                        for key, option in CONNECTOR_OPTIONS.items()
                        if key in shopify
                    }
                ),
                settings=settings,
                country_setups=MappingProxyType(setups),
                overlap_seconds=float(
                    (shop.get("sync") or {}).get("overlap_seconds", DEFAULT_OVERLAP_SECONDS)
                ),
                schedule=ScheduleConfig(
                    import_cron=schedule.get("import") or None,
                    export_cron=schedule.get("export") or None,
                    retries=int(schedule.get("retries", DEFAULT_RETRIES)),
                    retry_backoff_seconds=float(
                        schedule.get("retry_backoff_seconds", DEFAULT_RETRY_BACKOFF_SECONDS)
                    ),
                    park_after=int(schedule.get("park_after", DEFAULT_PARK_AFTER)),
                ),
            )
        )
    state = data.get("state") or {}
    erp_options = dict(data["erp"].get("business_central") or {})
    if erp_options.get("journal"):
        erp_options["journal"] = str(_resolve_path(erp_options["journal"], base_dir))
    workers = data.get("workers")
    return Config(
        workers=None
        if workers is None
        else WorkersConfig(
            broker_url=workers["broker_url"],
            broker_password_env=workers.get("broker_password_env", ""),
            result_backend=workers.get("result_backend", ""),
            queue=workers.get("queue", DEFAULT_WORKER_QUEUE),
            shop_queues=MappingProxyType(dict(workers.get("shop_queues") or {})),
            lease_retry_seconds=float(
                workers.get("lease_retry_seconds", DEFAULT_LEASE_RETRY_SECONDS)
            ),
            visibility_timeout_seconds=float(
                workers.get("visibility_timeout_seconds", DEFAULT_VISIBILITY_TIMEOUT_SECONDS)
            ),
            redis_key_prefix=str(workers.get("redis_key_prefix", "")),
        ),
        erp_url=_resolve_url(data["erp"]["url"], base_dir),
        erp_options=MappingProxyType(erp_options),
        state_url=_resolve_url(state.get("url", DEFAULT_STATE_URL), base_dir),
        rule_dirs=tuple(_resolve_path(folder, base_dir) for folder in data.get("rules") or ()),
        shops=tuple(shops),
        path=path,
        base_dir=base_dir,
    )


def _report(doc: LoadedDocument, base_dir: Path, path: Path | None) -> ConfigReport:
    diagnostics: list[Diagnostic] = [
        at(doc, pointer, "duplicate-key", message, key=True)
        for pointer, _position, message in doc.problems
    ]
    data = doc.data
    rule_dirs = tuple(
        _resolve_path(folder, base_dir)
        for folder in _list(_mapping(data).get("rules"))
        if isinstance(folder, str) and folder
    )
    if data is None:
        diagnostics.append(
            at(doc, "", "empty", "the file is empty; a config needs at least 'erp' and 'shops'")
        )
        return ConfigReport(None, sort_diagnostics(diagnostics), rule_dirs)
    diagnostics.extend(schema_diagnostics(doc, _validator(), _rewrite))
    checker = _ConfigChecker(doc, base_dir)
    diagnostics.extend(checker.run())
    diagnostics = sort_diagnostics(_masked(diagnostics, checker.secret_values))
    if has_errors(diagnostics):
        return ConfigReport(None, diagnostics, rule_dirs)
    return ConfigReport(_build(data, base_dir, path), diagnostics, rule_dirs)


def config_file(path: str | Path) -> Path:
    """``path`` when it is a file; else the UsageError every command gives for ``-c``."""
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"{path}: is a folder, not a config file (pass -c FILE)")
    if not file.is_file():
        raise UsageError(f"{path}: no such config file (pass -c FILE)")
    return file


def read_config(path: str | Path) -> ConfigReport:
    """Load and check ``path``; never raises for bad input."""
    file = Path(path)
    doc, problems = read_document(file)
    base_dir = file.resolve().parent
    if doc is None:
        return ConfigReport(None, problems)
    return _report(doc, base_dir, file.resolve())


def load_config(path: str | Path) -> tuple[Config | None, list[Diagnostic]]:
    """The typed config of ``path`` (None when there is any error) and every diagnostic."""
    report = read_config(path)
    return report.config, report.diagnostics


def require_config(path: str | Path) -> Config:
    """:func:`load_config`, raising :class:`~.errors.DiagnosticsError` on errors."""
    config, diagnostics = load_config(path)
    raise_on_errors(diagnostics)
    if config is None:  # pragma: no cover - errors raised above
        raise ConfigError(f"{path}: invalid configuration")
    return config


def load_config_text(
    text: str, path: str = "<config>", base_dir: Path | None = None
) -> tuple[Config | None, list[Diagnostic]]:
    """Like :func:`load_config` for text (embedded configs, tests)."""
    base = base_dir if base_dir is not None else Path.cwd()
    try:
        doc = load_yaml_text(text, path)
    except YamlSyntaxError as exc:
        position = exc.position
        return None, [
            Diagnostic(
                path, position.line, position.column, Severity.ERROR, exc.code, "", exc.message
            )
        ]
    report = _report(doc, base, None)
    return report.config, report.diagnostics


DEFAULT_CONFIG_YAML = """\
# custsync configuration. Relative paths are relative to this file.
erp: {url: "sqlite:///erp.db"}
state: {url: "sqlite:///custsync-state.db"}
rules: []                                   # your rule folders, applied over the shipped rules
shops:
  - name: main
    shopify:
      url: "http://127.0.0.1:8765"          # the local sandbox; a store: https://NAME.myshopify.com
      api_version: "2026-07"
      access_token_env: SHOPIFY_TOKEN       # the token itself is never in this file
      timeout_seconds: 30
    settings:
      customer_import: with_order_import
      customer_mapping_type: by_email_phone
      shopify_can_update_customers: false
      can_update_shopify_customers: false
      auto_create_unknown_customers: false
      customer_template_code: ""
      default_customer_no: ""
      export_customers: false
      name_source: company_name
      name_2_source: first_and_last_name
      contact_source: first_and_last_name
      county_source: code
      send_invite_email: false
    countries: []
    schedule: {import: "*/15 * * * *", export: "0 * * * *", retries: 3, retry_backoff_seconds: 30}
"""


def default_config(
    base_dir: Path | None = None, *, shopify_url: str | None = None, erp_url: str | None = None
) -> Config:
    """The embedded default (also the demo's): one shop ``main`` with behaviour.md's default
    settings. ``base_dir`` anchors the SQLite files (default: the working folder)."""
    config, diagnostics = load_config_text(DEFAULT_CONFIG_YAML, "<default config>", base_dir)
    raise_on_errors(diagnostics)
    assert config is not None
    if shopify_url is not None:
        shop = dataclasses.replace(config.shops[0], shopify_url=shopify_url)
        config = dataclasses.replace(config, shops=(shop,))
    if erp_url is not None:
        config = dataclasses.replace(config, erp_url=erp_url)
    return config
