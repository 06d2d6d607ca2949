-- Issue #16: a shipped reservation's stock has left the warehouse; it is never released.
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check CHECK (status IN
    ('reserved', 'rejected', 'released', 'shipped'));
