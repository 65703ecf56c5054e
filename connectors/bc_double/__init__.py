"""A local test double of Business Central's API v2.0 (customers and reference data).

Serves BC's URL shapes on 127.0.0.1 from a Starlette app on uvicorn: Entra ID's
client-credentials token endpoint, ``/v2.0/{tenant}/{environment}/api/v2.0/companies...``
(customers read and written, reference entity sets, ``$batch``) and published pages under
``/ODataV4/Company('...')/...`` (Customer Card, Countries/Regions, Customer Templ.). It answers
as BC does where the connector depends on it: OData query options and server-driven paging,
ETags and ``If-Match``, the error envelope with its CorrelationId, validation texts, the
number series, the per-user request limits, and injected faults. See
``docs/business-central.md``, "The Business Central double".

    >>> double = BcDouble().start()
    >>> companies = seed_world(double.store, DEFAULT_WORLD)
    >>> double.api_url  # doctest: +SKIP
    'http://127.0.0.1:PORT/v2.0/custsync-sandbox.onmicrosoft.com/Sandbox/api/v2.0'
    >>> double.stop()
"""

from __future__ import annotations

from .auth import SCOPE
from .errors import BcError
from .faults import Fault, parse_faults
from .limits import Limits
from .seed import DEFAULT_WORLD, SeedError, load_seed_file, seed_world
from .server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_ENVIRONMENT,
    DEFAULT_SECRET,
    DEFAULT_TENANT,
    BcDouble,
    RequestLog,
)
from .store import Company, Store, etag

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_ENVIRONMENT",
    "DEFAULT_SECRET",
    "DEFAULT_TENANT",
    "DEFAULT_WORLD",
    "SCOPE",
    "BcDouble",
    "BcError",
    "Company",
    "Fault",
    "Limits",
    "RequestLog",
    "SeedError",
    "Store",
    "etag",
    "load_seed_file",
    "parse_faults",
    "seed_world",
]
