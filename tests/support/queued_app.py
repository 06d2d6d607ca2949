"""A gunicorn app (one thread, or THREADS) whose request takes 1 s and reports how long it
queued and which connection it came on: ``python -m support.queued_app PORT`` (for
tests/integration/test_arrival_stamp.py)."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from valerix.kit import gunicorn_app


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    arrived = gunicorn_app.arrived_at.get()
    queued = None if arrived is None else time.monotonic() - arrived
    time.sleep(1.0)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"queued": queued, "client_port": environ.get("REMOTE_PORT")}).encode()]


if __name__ == "__main__":
    gunicorn_app.run(lambda: app, bind=f"127.0.0.1:{sys.argv[1]}", workers=1,
                    threads=int(os.environ.get("THREADS", "1")))
