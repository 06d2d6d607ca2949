"""LISTEN/NOTIFY wake-ups with polling as the fallback.

One background thread per channel holds a dedicated connection and counts notifications
per payload. A waiter remembers the count before it looks for work and sleeps until the
count moves or its poll interval ends, so no notification between "look" and "sleep" is
lost, and a dead connection only degrades wake-ups to polling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

ANY = ""  # waiters on ANY wake for every notification on the channel


class Listener:
    def __init__(self, conninfo: str, channel: str, *, reconnect_seconds: float = 2.0) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._reconnect = reconnect_seconds
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._broadcasts = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False

    def start(self) -> Listener:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"listen-{self._channel}", daemon=True)
                self._thread.start()
        return self

    def mark(self, key: str = ANY) -> int:
        """The current count for key, to pass to wait() after looking for work."""
        with self._cond:
            return self._counts[key] + self._broadcasts
    def wait(self, key: str, seen: int, timeout: float, stop: threading.Event | None = None) -> bool:
        """Sleeps until a notification for key (or a reconnect), the timeout, or stop."""
        self.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.mark(key) != seen:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (stop is not None and stop.is_set()):
                    return False
                # stop is a plain Event that cannot notify this condition: look at it often.
                self._cond.wait(min(remaining, 0.25) if stop is not None else remaining)

    def _bump(self, key: str, *, broadcast: bool = False) -> None:
        with self._cond:
            if broadcast:
                self._broadcasts += 1
            else:
                self._counts[key] += 1
                self._counts[ANY] += key != ANY
            self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self.connected = True
                    self._bump(ANY, broadcast=True)  # anything sent while we were not listening is worth a look
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._bump(note.payload or ANY)
            except psycopg.Error as error:
                if not self._stop.is_set():
                    log.warning("notification listener lost its connection; polling meanwhile",
                                extra={"channel": self._channel, "error": str(error)})
            finally:
                self.connected = False
            self._stop.wait(self._reconnect)

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=3)
