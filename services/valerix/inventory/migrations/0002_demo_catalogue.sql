-- The demo catalogue, seeded once: re-running never resets stock.
INSERT INTO products (id, name, price_cents, stock, initial_stock, low_stock_threshold) VALUES
    ('SKU-001', 'Frost-proof shipping crate',      4900,  500,  500, 10),
    ('SKU-002', 'Thermal pallet wrap (50 m)',       1899, 1000, 1000, 20),
    ('SKU-003', 'Cold-chain temperature logger',   12900,  200,  200,  5),
    ('SKU-004', 'Insulated tote, 40 L',             3450,  750,  750, 15),
    ('SKU-005', 'Gel ice packs (box of 24)',        2200, 5000, 5000, 50),
    ('SKU-006', 'Reefer door seal kit',             8900,   50,   50,  5),
    ('SKU-007', 'Barcode label roll (1000)',         999, 20000, 20000, 100),
    ('SKU-008', 'Last unit: limited edition crate', 99900,    1,    1,  0)
ON CONFLICT (id) DO NOTHING;
