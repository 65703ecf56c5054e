"""Login, sessions and CSRF protection of the console.

A session is a signed cookie (HMAC-SHA256 with a key made when the server starts, so a
restart logs everyone out) holding the session's CSRF token and whether it logged in. It is
``HttpOnly`` and ``SameSite=Strict``. Every state-changing form carries the token and is
refused (403) without it, also on 127.0.0.1 (another site open in the browser could post to
a local console). A login is required when ``CUSTSYNC_CONSOLE_PASSWORD_HASH`` (made by
``custsync serve --hash-password``) or ``CUSTSYNC_CONSOLE_TOKEN`` is set, and the server
refuses to bind anything but a loopback address without one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "COOKIE",
    "PASSWORD_HASH_ENV",
    "TOKEN_ENV",
    "ConsoleAuth",
    "Session",
    "hash_password",
    "verify_password",
]

PASSWORD_HASH_ENV = "CUSTSYNC_CONSOLE_PASSWORD_HASH"
TOKEN_ENV = "CUSTSYNC_CONSOLE_TOKEN"
COOKIE = "custsync_session"
#: a session lasts this long after its last login
SESSION_SECONDS = 12 * 3600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), for ``CUSTSYNC_CONSOLE_PASSWORD_HASH``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "$".join(["scrypt", str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"]),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, encoded: str) -> bool:
    try:
        kind, n, r, p, salt, digest = encoded.split("$")
        if kind != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32,
                                  n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def valid_password_hash(encoded: str) -> bool:
    parts = encoded.split("$")
    return len(parts) == 6 and parts[0] == "scrypt" and all(x.isdigit() for x in parts[1:4])


@dataclass
class Session:
    csrf: str
    user: bool = False
    expires: float = 0.0


class ConsoleAuth:
    """Signs and reads session cookies; checks logins and CSRF tokens."""

    def __init__(self, *, password_hash: str = "", token: str = "", key: bytes | None = None):
        if password_hash and not valid_password_hash(password_hash):
            raise ValueError(
                f"{PASSWORD_HASH_ENV} is not a hash made by `custsync serve --hash-password`"
            )
        self._password_hash = password_hash
        self._token = token
        self._key = key or secrets.token_bytes(32)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ConsoleAuth:
        return cls(password_hash=environ.get(PASSWORD_HASH_ENV, ""),
                   token=environ.get(TOKEN_ENV, ""))

    @property
    def login_required(self) -> bool:
        return bool(self._password_hash or self._token)

    def check_login(self, secret: str) -> bool:
        """The password (against the hash) or the token, in constant time."""
        ok = False
        if self._password_hash:
            ok = verify_password(secret, self._password_hash) or ok
        if self._token:
            ok = hmac.compare_digest(secret.encode(), self._token.encode()) or ok
        return ok

    def new_session(self, *, user: bool = False) -> Session:
        return Session(csrf=secrets.token_urlsafe(24), user=user,
                       expires=time.time() + SESSION_SECONDS)

    def dump(self, session: Session) -> str:
        body = base64.urlsafe_b64encode(json.dumps(
            {"csrf": session.csrf, "user": session.user, "exp": session.expires}
        ).encode()).decode()
        return f"{body}.{self._sign(body)}"

    def load(self, cookie: str | None) -> Session | None:
        """The session of a cookie, or None when it is missing, forged or expired."""
        if not cookie or "." not in cookie:
            return None
        body, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._sign(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body.encode()))
            session = Session(str(data["csrf"]), bool(data["user"]), float(data["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def csrf_ok(self, session: Session | None, submitted: str | None) -> bool:
        if session is None or not submitted:
            return False
        return hmac.compare_digest(session.csrf.encode(), submitted.encode())

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
