"""Find connectors by URL scheme through entry points, so the engine imports no connector.

``sqlite:///erp.db`` -> group ``custsync.erp_connectors``, name ``sqlite``;
``postgresql+psycopg://...`` -> name ``postgresql`` (the driver part is ignored);
``https://shop.myshopify.com`` -> group ``custsync.shopify_connectors``, name ``https``.
The entry point names an object with ``open_reader(url, **options)`` and
``open_writer(url, **options)``, and optionally ``preload()``: import and build what its first
use needs (:func:`preload_connector`; a Celery worker calls it before forking its processes).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from .errors import ConfigError

__all__ = [
    "ERP_GROUP",
    "SHOPIFY_GROUP",
    "open_erp_reader",
    "open_erp_writer",
    "open_shopify_reader",
    "open_shopify_writer",
    "preload_connector",
    "scheme_of",
]

ERP_GROUP = "custsync.erp_connectors"
SHOPIFY_GROUP = "custsync.shopify_connectors"


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition(":")
    if not sep or not scheme:
        raise ConfigError(f"connector URL {url!r} has no scheme (e.g. sqlite:///erp.db)")
    return scheme.split("+", 1)[0].lower()


#: connectors loaded so far, by (group, scheme): finding an entry point reads every installed
#: package's metadata (tens of milliseconds), too much to repeat for every run of a service
_loaded: dict[tuple[str, str], Any] = {}


def _connector(group: str, url: str) -> Any:
    """The connector for ``url``'s scheme in ``group``, imported on first use."""
    scheme = scheme_of(url)
    key = (group, scheme)
    if key not in _loaded:
        found = entry_points(group=group, name=scheme)
        if not found:
            known = sorted(ep.name for ep in entry_points(group=group))
            raise ConfigError(
                f"no connector for URL scheme {scheme!r} ({group}); known: {', '.join(known)}"
            )
        _loaded[key] = next(iter(found)).load()
    return _loaded[key]



def preload_connector(group: str, url: str) -> None:
    """Load the connector for ``url`` and let it prepare what its first use needs."""
    prepare = getattr(_connector(group, url), "preload", None)
    if callable(prepare):
        prepare()


def open_erp_reader(url: str, **options: Any) -> Any:
    return _connector(ERP_GROUP, url).open_reader(url, **options)


def open_erp_writer(url: str, **options: Any) -> Any:
    return _connector(ERP_GROUP, url).open_writer(url, **options)


def open_shopify_reader(url: str, **options: Any) -> Any:
    return _connector(SHOPIFY_GROUP, url).open_reader(url, **options)


def open_shopify_writer(url: str, **options: Any) -> Any:
    return _connector(SHOPIFY_GROUP, url).open_writer(url, **options)
