-- An event held back until a moment (kit/outbox.py): the order service holds a VerifyOrder
-- for a reservation that timed out on the stream, whose late answer usually settles the order
-- first and withdraws it (order/late_answers.py).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS publish_after timestamptz;
