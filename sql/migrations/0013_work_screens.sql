-- The tablet and triage screens (d2-work).
-- An order's most urgent clock: the earliest running one, else the paused one; the clock whose
-- countdown and colour band a screen shows (board.sql picks it the same way). A plain SQL table
-- function, so PostgreSQL inlines it into `LEFT JOIN LATERAL order_urgent_clock(o.id) c ON true`.
CREATE FUNCTION order_urgent_clock(order_id bigint)
RETURNS TABLE (kind text, started_at timestamptz, deadline timestamptz, minutes integer,
               business_hours boolean, state text, paused_at timestamptz, paused_seconds integer)
LANGUAGE sql STABLE AS $$
    SELECT c.kind, c.started_at, c.deadline, c.minutes, c.business_hours, c.state, c.paused_at, c.paused_seconds
    FROM order_clocks c
    WHERE c.order_id = order_urgent_clock.order_id AND c.state IN ('running', 'paused')
    ORDER BY c.state = 'running' DESC, c.deadline
    LIMIT 1
$$;
