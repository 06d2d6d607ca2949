"""Bearer tokens: issue, verify, refuse. Pure, no I/O."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from valerix.kit.auth import Identity, InvalidToken, Role, Tokens, bearer, new_signing_key, parse_ttl

TOKENS = Tokens(new_signing_key().encode())


def test_a_token_round_trips_and_names_its_owner():
    operator = TOKENS.verify(TOKENS.issue(Identity("operator:ann", Role.OPERATOR), timedelta(hours=8)).token)
    assert operator.is_operator and operator.owner is None
    guest = TOKENS.guest()
    customer = TOKENS.verify(guest.token)
    assert customer == guest.identity and customer.owner == customer.subject and customer.role is Role.CUSTOMER


def test_expired_foreign_and_garbled_tokens_are_refused():
    expired = TOKENS.issue(Identity("CUS-1", Role.CUSTOMER), timedelta(minutes=1),
                           now=datetime.now(UTC) - timedelta(minutes=5)).token
    with pytest.raises(InvalidToken, match="expired"):
        TOKENS.verify(expired)
    foreign = Tokens(new_signing_key().encode()).issue(Identity("CUS-1", Role.CUSTOMER), timedelta(hours=1)).token
    with pytest.raises(InvalidToken, match="signature"):
        TOKENS.verify(foreign)
    for garbled in ("", "abc", "a.b", "a.b.c.d", "é.é.é", "x" * 3000):
        with pytest.raises(InvalidToken):
            TOKENS.verify(garbled)


def test_keys_are_long_enough_and_never_shown():
    with pytest.raises(ValueError):
        Tokens(b"short")
    key = new_signing_key()
    assert key not in repr(Tokens(key.encode()))


def test_the_authorization_header_must_be_bearer():
    assert bearer("Bearer abc") == "abc" and bearer("bearer  abc ") == "abc"
    for header in (None, "", "Basic abc", "Bearer", "Bearer   "):
        with pytest.raises(InvalidToken):
            bearer(header)


def test_ttls_read_like_durations():
    assert parse_ttl("8h") == timedelta(hours=8) and parse_ttl("30m") == timedelta(minutes=30)
    assert parse_ttl("2d") == timedelta(days=2)
    for bad in ("", "8", "0h", "-1h", "8w", "1.5h"):
        with pytest.raises(ValueError):
            parse_ttl(bad)


def test_a_remembered_verification_still_expires_with_its_token():
    tokens = Tokens(new_signing_key())
    issued = tokens.issue(Identity("C-1", Role.CUSTOMER), timedelta(seconds=1))
    assert tokens.verify(issued.token) == Identity("C-1", Role.CUSTOMER)
    assert tokens.verify(issued.token) == Identity("C-1", Role.CUSTOMER)  # from the cache
    time.sleep(max(0.0, (issued.expires_at - datetime.now(UTC)).total_seconds()) + 0.1)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(issued.token)
