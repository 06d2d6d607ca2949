"""Bearer tokens: who is calling (a customer or an operator), signed with PyJWT (HS256).

The key comes from the environment (``AUTH_SIGNING_KEY``, or a file named by
``AUTH_SIGNING_KEY_FILE``): a Secret in Kubernetes, a file under ``.valerix/`` locally.
Tokens are credentials: nothing here logs one, and a refusal never echoes it back.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import jwt
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ALGORITHM = "HS256"
ISSUER = "valerix"
AUDIENCE = "valerix-api"
MIN_KEY_BYTES = 32
MAX_TOKEN_CHARS = 2048
VERIFIED_CACHE_SIZE = 10_000
CUSTOMER_TTL = timedelta(days=30)
OPERATOR_TTL = timedelta(hours=8)
MAX_OPERATOR_TTL = timedelta(days=7)
# A JWS in compact form: three base64url parts. Anything else is refused before PyJWT sees it.
COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


class Role(StrEnum):
    CUSTOMER = "customer"
    OPERATOR = "operator"


ROLES = frozenset(r.value for r in Role)


class InvalidToken(Exception):
    """Missing, malformed, expired, tampered or signed with another key; the message says
    which, in words safe to show the caller."""


@dataclass(frozen=True)
class Identity:
    subject: str   # the customer id, or the operator's name
    role: Role

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def owner(self) -> str | None:
        """Whose orders this caller is limited to; None for an operator (every order)."""
        return None if self.is_operator else self.subject


@dataclass(frozen=True)
class Issued:
    token: str
    identity: Identity
    expires_at: datetime


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False, env_ignore_empty=True)

    auth_signing_key: SecretStr | None = None
    auth_signing_key_file: Path | None = None

    def key(self) -> bytes:
        if self.auth_signing_key is not None:
            raw = self.auth_signing_key.get_secret_value().encode()
        elif self.auth_signing_key_file is not None:
            raw = self.auth_signing_key_file.read_bytes().strip()
        else:
            raise RuntimeError("Set AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE (scripts/up generates one).")
        if len(raw) < MIN_KEY_BYTES:
            raise RuntimeError(f"The token signing key must be at least {MIN_KEY_BYTES} bytes.")
        return raw


def new_signing_key() -> str:
    return secrets.token_urlsafe(48)


def new_customer_id() -> str:
    return f"CUS-{uuid.uuid4().hex[:20].upper()}"


class Tokens:
    """Issues and verifies tokens with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the signing key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        # Verified tokens -> (identity, expiry): a storefront sends the same token with every
        # call, and verifying it again costs more than the rest of the request's parsing.
        self._verified: dict[str, tuple[Identity, float]] = {}

    @classmethod
    def from_env(cls) -> Tokens:
        return cls(AuthSettings().key())

    def __repr__(self) -> str:
        return "Tokens(<key hidden>)"

    def issue(self, identity: Identity, ttl: timedelta, now: datetime | None = None) -> Issued:
        issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
        expires_at = issued_at + ttl
        claims = {"sub": identity.subject, "role": identity.role.value, "iss": ISSUER, "aud": AUDIENCE,
                  "iat": issued_at, "exp": expires_at, "jti": uuid.uuid4().hex}
        return Issued(jwt.encode(claims, self._key, algorithm=ALGORITHM), identity, expires_at)

    def guest(self) -> Issued:
        """A new customer: the only kind of token the API ever mints."""
        return self.issue(Identity(new_customer_id(), Role.CUSTOMER), CUSTOMER_TTL)

    def verify(self, token: str) -> Identity:
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        identity, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # (bounded: a flood of distinct valid tokens only re-verifies)
        self._verified[token] = (identity, expires)
        return identity

    def _verify(self, token: str) -> tuple[Identity, float]:
        if not token or len(token) > MAX_TOKEN_CHARS or not COMPACT.match(token):
            raise InvalidToken("The bearer token is malformed.")
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["sub", "role", "exp", "iat", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The bearer token has expired; get a new one.") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("The bearer token's signature does not verify.") from None
        except jwt.PyJWTError:
            raise InvalidToken("The bearer token is not valid.") from None
        subject, role = claims.get("sub"), claims.get("role")
        if not isinstance(subject, str) or not 0 < len(subject) <= 64 or role not in ROLES:
            raise InvalidToken("The bearer token is not valid.")
        return Identity(subject, Role(str(role))), float(claims["exp"])


def bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        raise InvalidToken("This call needs an Authorization: Bearer token (POST /api/session gives one).")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


DURATION = re.compile(r"^(\d{1,4})([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_ttl(text: str) -> timedelta:
    """``90s``, ``30m``, ``8h`` or ``2d``."""
    match = DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError("a duration like 30m, 8h or 2d")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
