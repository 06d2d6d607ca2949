-- The inserting transaction's id, so the relay publishes a row only once every transaction
-- that started before it has ended (see kit/outbox.py: no row is ever overtaken by a later one).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id();
