-- Issue #17: the reconciler asserts each order's final state to inventory once, a while after
-- it was reached; every status change clears the mark, so a later final state is asserted too.
ALTER TABLE orders ADD COLUMN asserted_at timestamptz;
CREATE INDEX orders_unasserted ON orders (updated_at)
    WHERE asserted_at IS NULL AND status IN ('confirmed', 'failed', 'cancelled', 'shipped');
