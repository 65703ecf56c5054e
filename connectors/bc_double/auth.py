"""Microsoft Entra ID's client-credentials token endpoint, as far as a BC client meets it.

``POST /{tenant}/oauth2/v2.0/token`` (form: grant_type, client_id, client_secret, scope)
answers ``{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
"access_token": ...}`` or Entra's error body ``{"error", "error_description": "AADSTSnnn:
...\\r\\nTrace ID: ...\\r\\nCorrelation ID: ...\\r\\nTimestamp: ...", "error_codes": [nnn],
"timestamp", "trace_id", "correlation_id", "error_uri"}`` (the shape recorded in public issue
threads; see docs/business-central.md). Tokens are JWT-shaped (``tid``, ``appid``, ``aud``,
``exp``, ``roles``) and signed by the double, so it can check tenant and expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SCOPE = "https://api.businesscentral.dynamics.com/.default"
AUDIENCE = "https://api.businesscentral.dynamics.com"


@dataclass(frozen=True, slots=True)
class TokenError(Exception):
    """An Entra ID refusal: HTTP status, OAuth error, AADSTS number and text."""

    status: int
    error: str
    code: int
    text: str

    def body(self) -> dict[str, Any]:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.text}\r\nTrace ID: {trace}\r\n"
                                 f"Correlation ID: {correlation}\r\nTimestamp: {stamp}",
            "error_codes": [self.code], "timestamp": stamp, "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


@dataclass(frozen=True, slots=True)
class Claims:
    tenant: str
    client_id: str
    expires: float
    issued: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Issues and checks the double's access tokens for one tenant and its app registrations."""

    def __init__(self, tenant: str, clients: Mapping[str, str], *, lifetime: int = 3599,
                 clock: Callable[[], float] = time.time) -> None:
        self.tenant = tenant
        self.clients = dict(clients)
        self.lifetime = lifetime
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._generation = 0

    def issue(self, tenant: str, form: Mapping[str, str]) -> dict[str, Any]:
        """The token answer for one token request, or a :class:`TokenError`."""
        if tenant.lower() != self.tenant.lower():
            raise TokenError(400, "invalid_request", 90002,
                             f"Tenant '{tenant}' not found. Check to make sure you have the "
                             "correct tenant ID and are signing into the correct cloud. Check "
                             "with your subscription administrator, this may happen if there "
                             "are no active subscriptions for the tenant.")
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            raise TokenError(400, "unsupported_grant_type", 70003,
                             "The app requested an unsupported grant type "
                             f"'{grant}'.")
        client_id = form.get("client_id", "")
        if not client_id:
            raise TokenError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: "
                             "'client_id'.")
        if client_id not in self.clients:
            raise TokenError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in "
                             f"the directory '{tenant}'. This can happen if the application "
                             "has not been installed by the administrator of the tenant or "
                             "consented to by any user in the tenant. You may have sent your "
                             "authentication request to the wrong tenant.")
        secret = form.get("client_secret", "")
        if not secret:
            raise TokenError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.")
        if not hmac.compare_digest(secret, self.clients[client_id]):
            raise TokenError(401, "invalid_client", 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in "
                             "the request is the client secret value, not the client secret "
                             f"ID, for a secret added to app '{client_id}'.")
        scope = form.get("scope", "")
        if scope != SCOPE:
            raise TokenError(400, "invalid_scope", 1002012,
                             f"The provided value for scope {scope} is not valid. Client "
                             "credential flows must have a scope value with /.default suffixed "
                             "to the resource identifier (application ID URI).")
        now = self._clock()
        claims = {"aud": AUDIENCE, "tid": self.tenant, "appid": client_id,
                  "roles": ["API.ReadWrite.All"], "iat": int(now), "nbf": int(now),
                  "exp": int(now) + self.lifetime, "jti": str(uuid.uuid4()),
                  "gen": self._generation}
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{payload}".encode(),
                                  hashlib.sha256).digest())
        return {"token_type": "Bearer", "expires_in": self.lifetime,
                "ext_expires_in": self.lifetime,
                "access_token": f"{header}.{payload}.{signature}"}

    def check(self, authorization: str | None) -> Claims | None:
        """The claims of a valid ``Authorization: Bearer`` header, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization[len("Bearer "):].strip()
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = _b64(hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(),
                                 hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except ValueError:
            return None
        now = self._clock()
        if claims["exp"] <= now or claims.get("gen") != self._generation:
            return None
        return Claims(claims["tid"], claims["appid"], claims["exp"], claims["iat"])

    def expire_all(self) -> None:
        """Every token issued so far is expired from now on (tests of the refresh on 401)."""
        self._generation += 1
