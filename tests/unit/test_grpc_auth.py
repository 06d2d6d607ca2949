"""The service credential's configuration: no token, no server and no client (fail closed)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from valerix.inventory.settings import InventorySettings
from valerix.kit import grpc_auth


@pytest.mark.parametrize("value", [None, SecretStr(""), SecretStr(" padded "), SecretStr("line\nbreak")])
def test_a_missing_or_unusable_token_refuses_to_start(value):
    with pytest.raises((RuntimeError, ValueError)):
        grpc_auth.require_token(value)


def test_the_token_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("INVENTORY_DATABASE_URL", "postgresql://x@127.0.0.1:1/x")
    monkeypatch.setenv("INVENTORY_GRPC_TOKEN", "from-the-secret")
    assert grpc_auth.require_token(InventorySettings().inventory_grpc_token) == "from-the-secret"  # type: ignore[call-arg]


def test_new_tokens_are_long_and_distinct():
    tokens = {grpc_auth.new_token() for _ in range(20)}
    assert len(tokens) == 20 and min(map(len, tokens)) >= 40
    with pytest.raises(ValueError):
        grpc_auth.TokenAuthInterceptor("")
