-- Transactional outbox: written in the same transaction as the state change it reports.
CREATE TABLE IF NOT EXISTS outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    destination  text        NOT NULL,          -- topic or queue name
    event_type   text        NOT NULL,
    payload      jsonb       NOT NULL,           -- the full envelope
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Idempotent consumers: a handled event id is recorded with the handler's effect.
CREATE TABLE IF NOT EXISTS inbox (
    consumer    text        NOT NULL,
    event_id    text        NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
