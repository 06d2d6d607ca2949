"""A real consumer process for the crash tests: `python -m support.consumer_proc SERVICE_DB_URL`.

Its handler records an effect row, and raises for a message whose data has "poison". With
CONSUMER_HOLD_FILE set it stops at its first complete() (the effect is committed, the
message not yet settled) and writes that file, so the test can kill -9 it right there.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from valerix.contracts.events import VERIFY_ORDERS, Envelope
from valerix.kit import db, logs, process
from valerix.kit.bus.port import ReceivedMessage
from valerix.kit.bus.postgres import PostgresBus
from valerix.kit.consumer import Consumer
from valerix.kit.uow import UnitOfWork

from support.bus import FAST


class HoldingBus(PostgresBus):
    def complete(self, message: ReceivedMessage) -> None:
        hold = os.environ.get("CONSUMER_HOLD_FILE")
        if hold:
            Path(hold).write_text(message.message_id)
            while True:
                time.sleep(1)
        super().complete(message)


def handle(uow: UnitOfWork, envelope: Envelope) -> None:
    if envelope.data.get("poison"):
        raise ValueError("this message can never be handled")
    uow.conn.execute("INSERT INTO effects (event_id, n) VALUES (%s, %s)", (envelope.eventId, envelope.data["n"]))


def main() -> None:
    logs.configure("consumer-proc", "INFO")
    pool = db.make_pool(sys.argv[1], name="consumer-proc", max_size=2)
    bus = HoldingBus(os.environ["BUS_DATABASE_URL"], topology=FAST, poll_seconds=0.2)
    try:
        Consumer(bus, VERIFY_ORDERS, pool, "e2e", handle, backoff_base=0.2,
                 wait_seconds=0.5).run_forever(process.stop_event())
    finally:
        bus.close()
        pool.close()


if __name__ == "__main__":
    main()
