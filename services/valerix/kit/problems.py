"""RFC 9457 problem details: every error the APIs return has this shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Response, json

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raised anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 type_: str = "about:blank", headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.headers = headers or {}
        self.extra = extra


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    body: dict[str, Any] = {"type": problem.type, "title": problem.title,
                            "status": problem.status, "detail": problem.detail}
    if instance:
        body["instance"] = instance
    body.update(problem.extra)
    response = Response(json.dumps(body), status=problem.status, mimetype=PROBLEM_JSON)
    response.headers.update(problem.headers)
    return response
