-- Issue #16: every order belongs to a customer, Idempotency-Keys are scoped per customer,
-- and confirmed orders can be shipped. Orders from before customers existed keep a NULL
-- owner: only operators see them.
ALTER TABLE orders ADD COLUMN customer_id text;
CREATE INDEX orders_customer_newest ON orders (customer_id, created_at DESC, id DESC);
CREATE INDEX orders_customer_status_newest ON orders (customer_id, status, created_at DESC, id DESC);

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
    ('pending', 'pending_verification', 'confirmed', 'failed', 'cancelled', 'shipped'));

ALTER TABLE idempotency_keys ADD COLUMN customer_id text NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ALTER COLUMN customer_id DROP DEFAULT;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (customer_id, key);
