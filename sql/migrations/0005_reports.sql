-- Reports (issue 7): "first-time fix" asks, for each done order of a month, whether it was ever
-- reported unfinished. This small partial index answers that without reading the whole
-- (append-only, ever-growing) history table.
CREATE INDEX order_events_unfinished ON order_events (order_id) WHERE to_status = 'unfinished';
