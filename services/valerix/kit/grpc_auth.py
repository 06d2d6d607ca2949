"""Service-to-service credential for gRPC: a shared bearer token (from a Secret) that the
caller attaches to every call and the server compares in constant time. It sits on top of
the NetworkPolicy, so a stray pod that can reach the port still cannot reserve or release.

The standard health and reflection services stay open: probes and tooling carry no token."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from pydantic import SecretStr

METADATA_KEY = "authorization"
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                 "grpc.reflection.v1.ServerReflection")


def _check_token(token: str) -> bytes:
    if not token or not token.isprintable() or token != token.strip():
        raise ValueError("the gRPC service token must be a non-empty printable string without surrounding space")
    return f"Bearer {token}".encode()


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Refuses every call outside OPEN_SERVICES that does not carry `authorization: Bearer <token>`
    with UNAUTHENTICATED, before the handler runs (so nothing is reserved or released)."""

    def __init__(self, token: str, open_services: Iterable[str] = OPEN_SERVICES) -> None:
        self._expected = _check_token(token)
        self._open = tuple(f"/{name}/" for name in open_services)

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        if details.method.startswith(self._open) or self._authorized(details.invocation_metadata):
            return continuation(details)
        return _REFUSE

    def _authorized(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        presented = [value for key, value in metadata or () if key == METADATA_KEY]
        if len(presented) != 1:
            return False
        value = presented[0]
        given = value.encode() if isinstance(value, str) else value
        return hmac.compare_digest(given, self._expected)


def _refuse(request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong service credential")


# Raw bytes in and out: the refusal never parses the caller's message. A unary handler also
# ends a streaming call, since it aborts before reading or writing anything.
_REFUSE = grpc.unary_unary_rpc_method_handler(_refuse)


Metadata = tuple[tuple[str, str], ...]


def token_metadata(token: str) -> Metadata:
    """The call metadata that carries the service token: pass it as ``metadata=`` on every call.

    Not grpc.access_token_call_credentials: gRPC sends call credentials only over a channel with
    transport security (or a local one), and inventory's port is plain TCP inside the cluster,
    protected by the NetworkPolicy. Not a client interceptor either: grpc's interceptor chain
    costs more Python per call than the call itself."""
    return ((METADATA_KEY, _check_token(token).decode()),)


def require_token(value: SecretStr | None) -> str:
    """The configured token (INVENTORY_GRPC_TOKEN), or a clear refusal to start without one."""
    if value is None or not value.get_secret_value():
        raise RuntimeError("INVENTORY_GRPC_TOKEN is not set: inventory's gRPC needs the order service's credential")
    token = value.get_secret_value()
    _check_token(token)
    return token


def new_token() -> str:
    return secrets.token_urlsafe(32)
