"""A stand-in order API for the Prometheus alert test: the real kit web app (the same
request-duration metric, labels and /metrics as the order service) under real gunicorn with
two workers in prometheus multiprocess mode. POST /api/orders takes as many seconds as the
file given on the command line says.

    python slow_order_api.py PORT LATENCY_FILE      (PROMETHEUS_MULTIPROC_DIR must be set)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from flask import Flask

from valerix.kit import gunicorn_app, web


def factory(latency_file: Path) -> Flask:
    app = web.create_app("order", {"database": lambda: None})

    @app.post("/api/orders")
    def place() -> tuple[dict[str, str], int]:
        time.sleep(float(latency_file.read_text()))
        return {"status": "confirmed"}, 201

    return app


if __name__ == "__main__":
    port, latency = int(sys.argv[1]), Path(sys.argv[2])
    gunicorn_app.reset_multiproc_dir()
    gunicorn_app.run(lambda: factory(latency), bind=f"127.0.0.1:{port}", workers=2, threads=16)
