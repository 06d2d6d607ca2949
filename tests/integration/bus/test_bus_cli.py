import json

from click.testing import CliRunner

from valerix.cli import main
from valerix.contracts.events import VERIFY_ORDERS, Envelope
from valerix.kit.bus.postgres import PostgresBus


def run(env, *args):
    result = CliRunner().invoke(main, ["bus", *args], env={"BUS_BACKEND": "postgres", **env})
    return result.exit_code, result.output


def test_provision_status_peek_and_resubmit(new_database):
    url = new_database("buscli")
    env = {"BUS_DATABASE_URL": url}
    code, out = run(env, "provision")
    assert code == 0 and "verify-orders" in out and "inventory-events/subscriptions/order-service-sub" in out
    assert run(env, "provision")[0] == 0  # safe to repeat

    bus = PostgresBus(url)
    try:
        sent = Envelope(eventType="VerifyOrder", data={"orderId": "o-1"})
        bus.publish(VERIFY_ORDERS, sent)
        code, out = run(env, "status", "--json")
        rows = {r["entity"]: r for r in map(json.loads, out.splitlines())}
        assert rows[VERIFY_ORDERS] == {"entity": VERIFY_ORDERS, "active": 1, "scheduled": 0, "deadLetter": 0}

        (m,) = bus.receive(VERIFY_ORDERS, max_wait_seconds=2)
        bus.dead_letter(m, "Poison", "handler kept failing")
        code, out = run(env, "status")
        assert code == 0
        assert [line.split() for line in out.splitlines() if line.startswith(VERIFY_ORDERS)] == [
            [VERIFY_ORDERS, "0", "0", "1"]]
        code, out = run(env, "peek", VERIFY_ORDERS, "--dead-letter")
        (line,) = map(json.loads, out.splitlines())
        assert (line["messageId"], line["deadLetterReason"]) == (sent.eventId, "Poison")
        assert line["body"]["data"] == {"orderId": "o-1"}

        assert run(env, "resubmit", VERIFY_ORDERS, sent.eventId) == (0, f"resubmitted 1 message(s) to {VERIFY_ORDERS}\n")
        code, out = run(env, "resubmit", VERIFY_ORDERS, sent.eventId)
        assert code == 1 and "no dead letter" in out
        (again,) = bus.receive(VERIFY_ORDERS, max_wait_seconds=2)
        assert again.message_id == sent.eventId and again.delivery_count == 1
        code, out = run(env, "peek", "no-such-queue")
        assert code == 1 and "no queue, topic or subscription" in out
    finally:
        bus.close()


def test_a_missing_address_is_a_clear_error():
    code, out = run({"BUS_DATABASE_URL": ""}, "status")
    assert code == 1 and "BUS_DATABASE_URL" in out
