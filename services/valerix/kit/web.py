"""create_app(): the Flask defaults every HTTP service shares — health, metrics, JSON logs,
request ids, problem+json errors, body-size limits."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from valerix.kit import db, health, logs, metrics, timing
from valerix.kit.gunicorn_app import arrived_at
from valerix.kit.problems import Problem, problem_response

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
UNROUTED = "<unmatched>"


def arrival() -> float:
    """When the current request arrived (time.monotonic()), queueing in the server included."""
    arrived: float | None = g.get("arrived")
    return arrived if arrived is not None else time.monotonic()


def create_app(service: str, checks: Mapping[str, health.Check], import_name: str = __name__,
               ready_on: tuple[str, ...] = ("database",)) -> Flask:
    """``/health`` reports every dependency (the seed's shape; 503 when any is down);
    ``/health/ready`` checks only what this process cannot serve without (``ready_on``), so
    an order API whose inventory is down stays in rotation and keeps answering 202."""
    app = Flask(import_name)
    everything = health.Probe(service, checks, name="all")
    readiness = health.Probe(service, {k: v for k, v in checks.items() if k in ready_on}, name="ready")
    if checks:
        health.watch(everything)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_request
    def _start() -> None:
        g.started = time.monotonic()
        g.arrived = arrived_at.get() or g.started
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else str(uuid.uuid4())
        logs.request_id.set(g.request_id)
        logs.order_id.set(None)
        timing.begin()

    @app.after_request
    def _finish(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else UNROUTED
        finished = time.monotonic()
        started = g.get("started", finished)
        elapsed = finished - started
        metrics.HTTP_REQUEST.labels(service=service, method=request.method, route=route,
                                    status=str(response.status_code)).observe(elapsed)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers["Server-Timing"] = server_timing(started - g.get("arrived", started), elapsed,
                                                         timing.recorded())
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.status_code >= 500:
            log.error("request failed", extra={"method": request.method, "route": route,
                                               "status": response.status_code})
        return response

    @app.teardown_request
    def _forget_steps(_: BaseException | None) -> None:
        timing.end()

    @app.errorhandler(Problem)
    def _problem(problem: Problem) -> Response:
        return problem_response(problem, request.path)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        code = error.code or 500
        detail = error.description or ""
        if code == 413:
            detail = f"The request body is larger than {MAX_BODY_BYTES} bytes."
        allowed = getattr(error, "valid_methods", None)
        headers = {"Allow": ", ".join(allowed)} if allowed else {}
        return problem_response(Problem(code, detail, headers=headers), request.path)

    def _database_down(error: Exception) -> Response:
        log.error("database unavailable", extra={"error": repr(error)})
        return problem_response(Problem(503, "The database is not answering; try again shortly.",
                                        headers={"Retry-After": "2"}), request.path)

    for unavailable in db.UNAVAILABLE:
        app.register_error_handler(unavailable, _database_down)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(Problem(500, "An unexpected error occurred; it has been logged."),
                                request.path)

    @app.get("/health")
    def _ready() -> tuple[Response, int]:
        healthy, body = everything.run()
        return jsonify(body), 200 if healthy else 503

    @app.get("/health/ready")
    def _ready_for_traffic() -> tuple[Response, int]:
        healthy, body = readiness.run()
        return jsonify(body), 200 if healthy else 503

    @app.get("/health/live")
    def _live() -> Response:
        return jsonify({"status": "alive", "service": service})

    @app.get("/metrics")
    def _metrics() -> Response:
        payload, content_type = metrics.exposition()
        return Response(payload, mimetype=content_type.split(";")[0], content_type=content_type)

    return app


def server_timing(queued: float, handled: float, steps: Sequence[tuple[str, float]] = ()) -> str:
    """The W3C Server-Timing header of an answer: how long the request queued in this process
    before a handler took it (from its arrival, see gunicorn_app.arrived_at), how long the
    handler took, and the named steps of the handler (kit.timing), which are part of ``app``.
    What a client measured beyond queue and app went before the request reached this process
    or after the answer left it."""
    return ", ".join([f"queue;dur={queued * 1000:.1f}", f"app;dur={handled * 1000:.1f}",
                      *(f"{name};dur={seconds * 1000:.1f}" for name, seconds in steps)])


def json_body() -> Any:
    """The request's JSON body, or a 415/400 problem."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Problem(415, "Send the body as application/json.")
    raw = request.get_data(cache=True)
    if not raw:
        raise Problem(400, "The request body is empty; a JSON object is expected.")
    try:
        return request.get_json(force=True)
    except (HTTPException, RecursionError, ValueError):
        raise Problem(400, "The request body is not valid JSON.") from None
