-- Housekeeping trims idempotency keys by age (order/db.py TRIM_IDEMPOTENCY_KEYS).
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);
