"""A stand-in for the rate-limited off-site backup service: one accepted upload per client per UTC
day (a second gets 429 + Retry-After), bundles kept on disk, listed and downloadable for restores.

Only uploads count against the limit; listing and downloading are free (a restore must never wait
for tomorrow). The clock can be moved only when the server was started with allow_clock_header
(tests), through the X-Mock-Now header; otherwise that header is ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request, send_file

from valerix.backup.files import exclusive, fsync_dir, write_json_atomic
from valerix.kit.problems import Problem
from valerix.kit.web import create_app

log = logging.getLogger(__name__)
CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
BUNDLE_ID = re.compile(r"^\d{4}-\d{2}-\d{2}-[0-9a-f]{32}$")
CONTENT_TYPES = ("application/x-tar", "application/octet-stream")
COUNTED = "Backup-Call-Counted"
CHUNK = 1024 * 1024


def create_mock_app(storage: Path, max_bytes: int = 1024**3, allow_clock_header: bool = False,
                    clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Flask:
    app = create_app("backup-mock", {}, import_name=__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_bytes + 1
    storage.mkdir(parents=True, exist_ok=True)

    def now() -> datetime:
        header = request.headers.get("X-Mock-Now")
        if allow_clock_header and header:
            try:
                return datetime.fromisoformat(header).astimezone(UTC)
            except ValueError:
                raise Problem(400, "X-Mock-Now must be an ISO 8601 timestamp.") from None
        return clock()

    def client_folder() -> Path:
        client = request.headers.get("X-Client-Id", "")
        if not CLIENT_ID.match(client):
            raise Problem(400, "X-Client-Id must be 1-63 characters of a-z, 0-9 and '-', starting "
                               "with a letter or digit.")
        return storage / client

    @app.after_request
    def _counted(response: Response) -> Response:
        if request.endpoint == "upload":
            response.headers[COUNTED] = "true" if g.get("counted") else "false"
        return response

    @app.post("/v1/bundles", endpoint="upload")
    def upload() -> tuple[Response, int]:
        folder = client_folder()
        if (request.mimetype or "") not in CONTENT_TYPES:
            raise Problem(415, f"Send the bundle as {' or '.join(CONTENT_TYPES)}.")
        length = request.content_length
        if length is None:
            raise Problem(411, "Content-Length is required.")
        if length == 0:
            raise Problem(400, "The request body is empty; a bundle is expected.")
        if length > max_bytes:
            raise Problem(413, f"The bundle is {length} bytes; the limit is {max_bytes}.")
        at = now()
        day = at.date().isoformat()
        with exclusive(storage / ".lock", wait=30):  # one upload decision at a time
            if _accepted_on(folder, day):
                midnight = datetime.combine(at.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
                retry = max(1, int((midnight - at).total_seconds()))
                raise Problem(429, f"Client {folder.name} already made today's call ({day} UTC).",
                              headers={"Retry-After": str(retry)}, retryAfter=retry)
            receipt = _store(folder, day, at, length)
            g.counted = True
        log.info("bundle accepted", extra={"client": folder.name, "bundle": receipt["bundleId"]})
        return jsonify(receipt), 201

    def _store(folder: Path, day: str, at: datetime, length: int) -> dict[str, Any]:
        day_folder = folder / day
        day_folder.mkdir(parents=True, exist_ok=True)
        bundle_id = f"{day}-{uuid.uuid4().hex}"
        tmp = day_folder / f".{bundle_id}.part"
        digest = hashlib.sha256()
        size = 0
        try:
            with tmp.open("wb") as f:
                while chunk := request.stream.read(CHUNK):
                    size += len(chunk)
                    if size > length:
                        raise Problem(400, "The body is longer than its Content-Length.")
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if size != length:
                raise Problem(400, f"The body ended after {size} of {length} bytes.")
            claimed = request.headers.get("X-Content-SHA256", "").lower()
            if claimed and claimed != digest.hexdigest():
                raise Problem(422, "X-Content-SHA256 does not match the body received.")
            receipt = {"bundleId": bundle_id, "client": folder.name, "day": day, "size": size,
                       "sha256": digest.hexdigest(), "receivedAt": at.isoformat(),
                       "idempotencyKey": request.headers.get("Idempotency-Key", "")[:200]}
            os.replace(tmp, day_folder / f"{bundle_id}.tar")
            write_json_atomic(day_folder / f"{bundle_id}.json", receipt)  # the commit point
            fsync_dir(day_folder)
            return receipt
        finally:
            tmp.unlink(missing_ok=True)

    @app.get("/v1/bundles")
    def listing() -> Response:
        folder = client_folder()
        receipts = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*/*.json"))]
        return jsonify({"client": folder.name, "bundles": sorted(receipts, key=lambda r: r["receivedAt"])})

    @app.get("/v1/bundles/<bundle_id>")
    def download(bundle_id: str) -> Response:
        folder = client_folder()
        if not BUNDLE_ID.match(bundle_id):
            raise Problem(400, "Not a bundle id.")
        path = folder / bundle_id[:10] / f"{bundle_id}.tar"
        if not (folder / bundle_id[:10] / f"{bundle_id}.json").is_file():
            raise Problem(404, f"No bundle {bundle_id} for client {folder.name}.")
        return send_file(path.resolve(), mimetype="application/x-tar", as_attachment=True,
                         download_name=f"{bundle_id}.tar")

    return app


def _accepted_on(folder: Path, day: str) -> bool:
    return any((folder / day).glob("*.json")) if (folder / day).is_dir() else False


def serve(storage: Path, host: str, port: int, max_bytes: int, allow_clock_header: bool) -> None:
    import waitress

    if allow_clock_header:
        log.warning("X-Mock-Now is honoured: this server's clock can be moved by clients (tests only)")
    app = create_mock_app(storage, max_bytes, allow_clock_header)
    waitress.serve(app, host=host, port=port, threads=4, max_request_body_size=max_bytes + 64 * CHUNK,
                   ident="valerix-backup-mock")
