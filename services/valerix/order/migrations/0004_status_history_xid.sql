-- The storefront's live feed reads the status history instead of a NOTIFY per commit
-- (order/live_status.py). Ids can commit out of order, so the feed pages by the inserting
-- transaction's id and takes a row only once every transaction older than it has ended.
-- Rows already here get this migration's transaction id; the feed never replays them.
ALTER TABLE order_status_history ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX IF NOT EXISTS order_status_history_xid ON order_status_history (xid, id);
