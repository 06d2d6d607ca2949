"""Every check writes its report the same way: ``<stem>.json`` (everything) and ``<stem>.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(out: Path, stem: str, body: Any, markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(body, indent=2, default=str))
    (out / f"{stem}.md").write_text(markdown)
