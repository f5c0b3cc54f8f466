-- Reports (issue 7): response and arrival times mean the FIRST acceptance and arrival, and
-- first-time fix asks whether an order was ever reported unfinished. Both come from the history:
-- this partial index holds just those steps (a few per order) of the append-only event table.
CREATE INDEX order_events_first_steps ON order_events (order_id)
    INCLUDE (at, to_status) WHERE to_status IN ('accepted', 'on_site', 'unfinished');
-- Superseded by the index above (it covers 'unfinished' too).
DROP INDEX IF EXISTS order_events_unfinished;
