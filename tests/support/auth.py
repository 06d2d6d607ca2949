"""Bearer tokens for tests: a fresh signing key per test session, and header helpers."""

from __future__ import annotations

from datetime import timedelta

from valerix.kit.auth import Identity, Role, Tokens, new_customer_id, new_signing_key

KEY = new_signing_key()
TOKENS = Tokens(KEY.encode())


def customer(tokens: Tokens = TOKENS, subject: str | None = None) -> dict[str, str]:
    identity = Identity(subject or new_customer_id(), Role.CUSTOMER)
    return {"Authorization": f"Bearer {tokens.issue(identity, timedelta(hours=1)).token}"}


def operator(tokens: Tokens = TOKENS) -> dict[str, str]:
    identity = Identity("operator:test", Role.OPERATOR)
    return {"Authorization": f"Bearer {tokens.issue(identity, timedelta(hours=1)).token}"}
