-- Subscription filters: a subscription receives only the event types it names (NULL: all),
-- like an Azure Service Bus rule on the message's subject (sys.Label).
ALTER TABLE bus_entities ADD COLUMN IF NOT EXISTS subjects text[];
