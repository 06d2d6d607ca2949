"""Who is calling the order API: the bearer guard on ``/api/orders*``, guest sessions, and
the operator-only check. Routes read the caller with ``caller()``."""

from __future__ import annotations

from flask import Flask, Response, g, jsonify, request

from valerix.kit.auth import Identity, InvalidToken, Tokens, bearer
from valerix.kit.problems import Problem
from valerix.kit.web import json_body

GUARDED = "/api/orders"
REALM = 'Bearer realm="valerix"'


def unauthorized(detail: str, *, invalid: bool) -> Problem:
    challenge = f'{REALM}, error="invalid_token"' if invalid else REALM
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})


def authenticate(tokens: Tokens, header: str | None) -> Identity:
    try:
        token = bearer(header)
    except InvalidToken as error:
        raise unauthorized(str(error), invalid=bool(header)) from None
    try:
        return tokens.verify(token)
    except InvalidToken as error:
        raise unauthorized(str(error), invalid=True) from None


def register(app: Flask, tokens: Tokens) -> None:
    """Every ``/api/orders*`` request needs a valid bearer token (the rest stays public), and
    ``POST /api/session`` hands out guest customers."""

    @app.before_request
    def _require_bearer() -> None:
        path = request.path
        if path == GUARDED or path.startswith(GUARDED + "/"):
            g.identity = authenticate(tokens, request.headers.get("Authorization"))

    @app.post("/api/session")
    def create_session() -> tuple[Response, int]:
        """A new guest customer. Whatever the body asks for (a role, a subject), the answer is
        a customer token: operator tokens come only from the CLI."""
        if request.content_length or request.headers.get("Transfer-Encoding"):
            body = json_body()
            if not isinstance(body, dict):
                raise Problem(400, "The body, if any, must be a JSON object.")
        issued = tokens.guest()
        response = jsonify({"token": issued.token, "customerId": issued.identity.subject,
                            "expiresAt": issued.expires_at.isoformat()})
        response.headers["Cache-Control"] = "no-store"
        return response, 201


def caller() -> Identity:
    identity = g.get("identity")
    assert isinstance(identity, Identity), "route outside the bearer guard"
    return identity


def operator() -> Identity:
    identity = caller()
    if not identity.is_operator:
        raise Problem(403, "Only operators may do this.")
    return identity
