-- The relay's lease on the batch it is publishing (kit/outbox.py): no transaction stays open
-- across the broker call, and a lease left by a dead relay expires by itself.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS leased_until timestamptz;
CREATE INDEX IF NOT EXISTS outbox_leased ON outbox (leased_until) WHERE sent_at IS NULL AND leased_until IS NOT NULL;
-- Housekeeping (kit/retention.py) trims by age.
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS inbox_handled ON inbox (handled_at);
