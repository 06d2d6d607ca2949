-- The embedded bus: Azure Service Bus semantics on PostgreSQL (DESIGN §4).

-- Queues, topics and the named subscriptions of each topic. A topic holds no messages:
-- publishing to it writes one copy into each of its subscriptions (fan-out).
CREATE TABLE IF NOT EXISTS bus_entities (
    name                text PRIMARY KEY,      -- queue, topic, or "<topic>/subscriptions/<name>"
    kind                text NOT NULL CHECK (kind IN ('queue', 'topic', 'subscription')),
    topic               text REFERENCES bus_entities (name) ON DELETE CASCADE,
    lock_duration       interval NOT NULL DEFAULT '30 seconds',
    max_delivery_count  integer  NOT NULL DEFAULT 10 CHECK (max_delivery_count > 0),
    duplicate_window    interval NOT NULL DEFAULT '10 minutes',
    CHECK ((kind = 'subscription') = (topic IS NOT NULL))
);

-- Duplicate detection: a message id seen on a queue or topic within its window is dropped.
CREATE TABLE IF NOT EXISTS bus_duplicates (
    destination   text        NOT NULL,
    message_id    text        NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination, message_id)
);

-- One row per message per queue or subscription. A message is available when it is not
-- dead-lettered and visible_at has passed; a receive locks it by moving visible_at to the
-- end of the lock duration (so an expired lock needs no sweeper) and issuing a lock token.
CREATE TABLE IF NOT EXISTS bus_messages (
    seq                      bigserial PRIMARY KEY,
    entity                   text        NOT NULL REFERENCES bus_entities (name) ON DELETE CASCADE,
    message_id               text        NOT NULL,
    subject                  text,
    body                     jsonb       NOT NULL,
    enqueued_at              timestamptz NOT NULL DEFAULT now(),
    visible_at               timestamptz NOT NULL DEFAULT now(),
    lock_token               uuid,
    delivery_count           integer     NOT NULL DEFAULT 0,
    dead_lettered_at         timestamptz,
    dead_letter_reason       text,
    dead_letter_description  text
);
CREATE INDEX IF NOT EXISTS bus_messages_active ON bus_messages (entity, seq) WHERE dead_lettered_at IS NULL;
CREATE INDEX IF NOT EXISTS bus_messages_dead ON bus_messages (entity, seq) WHERE dead_lettered_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS bus_messages_id ON bus_messages (entity, message_id);
CREATE INDEX IF NOT EXISTS bus_duplicates_age ON bus_duplicates (published_at);
