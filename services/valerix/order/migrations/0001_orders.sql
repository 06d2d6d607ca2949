CREATE TABLE orders (
    id               text PRIMARY KEY,
    status           text        NOT NULL CHECK (status IN
                         ('pending', 'pending_verification', 'confirmed', 'failed', 'cancelled')),
    reason           text,
    reservation_id   text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    verify_attempts  integer     NOT NULL DEFAULT 0,
    last_verify_at   timestamptz
);
CREATE INDEX orders_newest ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_newest ON orders (status, created_at DESC, id DESC);
CREATE INDEX orders_unfinished ON orders (updated_at) WHERE status IN ('pending', 'pending_verification');

CREATE TABLE order_items (
    order_id    text    NOT NULL REFERENCES orders (id),
    line_no     integer NOT NULL,
    product_id  text    NOT NULL,
    quantity    integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_status_history (
    id           bigserial PRIMARY KEY,
    order_id     text        NOT NULL REFERENCES orders (id),
    from_status  text,
    to_status    text        NOT NULL,
    reason       text,
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX order_status_history_order ON order_status_history (order_id, id);

-- The first answer given for an Idempotency-Key, replayed for every repeat of the same body.
CREATE TABLE idempotency_keys (
    key              text PRIMARY KEY,
    request_hash     text        NOT NULL,
    order_id         text        NOT NULL REFERENCES orders (id),
    response_status  integer,
    response_body    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
