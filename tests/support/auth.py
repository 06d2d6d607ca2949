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


def session(base_url: str) -> dict[str, str]:
    """A new guest customer from the real API, as the storefront gets one."""
    import httpx

    response = httpx.post(f"{base_url}/api/session", timeout=10)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}
