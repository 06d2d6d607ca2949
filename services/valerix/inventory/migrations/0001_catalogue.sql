CREATE TABLE products (
    id                   text PRIMARY KEY,
    name                 text        NOT NULL,
    price_cents          bigint      NOT NULL CHECK (price_cents >= 0),
    stock                bigint      NOT NULL CHECK (stock >= 0),
    -- every unit ever added; the invariant is initial_stock = stock + reserved units
    initial_stock        bigint      NOT NULL CHECK (initial_stock >= 0),
    low_stock_threshold  integer     NOT NULL DEFAULT 10 CHECK (low_stock_threshold >= 0),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- One row per order id, ever: the first outcome is what every repeat returns.
CREATE TABLE reservations (
    order_id        text PRIMARY KEY,
    reservation_id  text        UNIQUE,
    status          text        NOT NULL CHECK (status IN ('reserved', 'rejected', 'released')),
    reason          text,
    shortages       jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_status ON reservations (status);

CREATE TABLE reservation_lines (
    order_id    text    NOT NULL REFERENCES reservations (order_id),
    product_id  text    NOT NULL REFERENCES products (id),
    quantity    integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX reservation_lines_product ON reservation_lines (product_id);
