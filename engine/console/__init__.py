"""The HTTP side of custsync: ``custsync serve`` (an ASGI app on Starlette, served by uvicorn).

``app`` builds the application: ``POST /webhooks/shopify`` (Shopify's webhooks, checked and
recorded by :mod:`..run.webhooks`, answered at once, never synced inline) and ``GET
/healthz``. Every answer carries the security headers; the server binds 127.0.0.1 unless told
otherwise (a public URL goes through a reverse proxy with TLS: docs/webhooks.md).

May import: ``run``, ``decide``, ``rules``, ``config`` and the shared modules; never ``cli``
(the command ``custsync serve`` in ``cli`` imports this package, not the other way round).
"""
