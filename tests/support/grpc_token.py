"""A channel that adds the service token to every unary call, so tests can use plain stubs
(the order service passes ``token_metadata`` on each call instead)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import grpc

from valerix.kit.grpc_auth import token_metadata


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


class _TokenInterceptor(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self._metadata = token_metadata(token)

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_CallDetails(details.method, details.timeout, [*(details.metadata or ()), *self._metadata],
                                         details.credentials, details.wait_for_ready, details.compression), request)


def authorized_channel(channel: grpc.Channel, token: str) -> grpc.Channel:
    return grpc.intercept_channel(channel, _TokenInterceptor(token))
