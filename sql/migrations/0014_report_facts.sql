-- Reports (issue 7): order_facts, one row per order with the facts the report counts, so a
-- month's report reads one narrow row per order instead of judging every clock and scanning
-- the history of 100,000 orders each time it is opened.
--
-- What is stored is what does not change with the moment the report is judged at; what does
-- (a running clock is late once its deadline has passed) is stored as that deadline
-- (late_after, pending_until, due_*), compared with :now when read (sql/queries/report_orders.sql).
-- What managers may change later (a project's 基本满意 setting, an engineer's team) is looked up
-- when read, too: the figures are exactly those computed from orders, clocks and history.
--
-- Maintenance without new locks on the write path: statement triggers on orders, order_clocks and
-- order_events append the changed orders' ids to order_facts_stale (no key: an insert never waits
-- for another transaction); order_facts_flush() — run by every report and by the wall board's
-- panel before they read, in its own READ COMMITTED transaction — recomputes those orders'
-- rows from order_facts_source, one flush at a time (an advisory lock). Writers of an order and
-- of its clocks (the lifecycle, the breach sweep) therefore never wait for each other here.

CREATE TABLE order_facts (
    order_id       bigint PRIMARY KEY REFERENCES orders(id) ON DELETE CASCADE,
    project_id     integer NOT NULL,
    received_at    timestamptz NOT NULL,
    counted        boolean NOT NULL,      -- false: cancelled without ever being done (left out)
    team_id        integer,               -- the team it was transferred to; NULL: its engineer's
    assignee_id    integer,
    category       text NOT NULL,
    kind           text NOT NULL,
    status         text NOT NULL,
    finished_at    timestamptz,
    -- Seconds from receipt to the FIRST acceptance and the FIRST arrival on site (history), and
    -- to done: the report's times, their percentiles and the completion histogram.
    response_s     double precision,
    arrival_s      double precision,
    completion_s   double precision,
    was_unfinished boolean NOT NULL,      -- ever reported unfinished (history)
    called_back    boolean NOT NULL,
    rating         text,
    reopened       boolean NOT NULL,
    man_hours      numeric(6, 2),
    -- Timeliness over the arrival and completion clocks (stats.DEFINITIONS):
    has_clocks     boolean NOT NULL,      -- one not cancelled
    late           boolean NOT NULL,      -- one missed, whenever judged
    late_after     timestamptz,           -- one missed when judged after this (running, deadline)
    pending        boolean NOT NULL,      -- one undecided whenever judged (paused in time)
    pending_until  timestamptz,           -- one undecided when judged at or before this (running)
    -- Breaches by clock, every kind: one entry per clock missed for good, and the running
    -- clocks that will be missed once past their deadline (kinds and deadlines side by side).
    breached       text[] NOT NULL,
    due_kinds      text[] NOT NULL,
    due_deadlines  timestamptz[] NOT NULL,
    -- Unfinished over 24 h: not done (or cancelled) during [received_at, settled_at).
    open_span      tstzrange NOT NULL
);
CREATE INDEX order_facts_period ON order_facts (project_id, received_at);
CREATE INDEX order_facts_open_span ON order_facts USING gist (open_span);

CREATE TABLE order_facts_stale (order_id bigint NOT NULL);

-- Each order's facts, computed from the order, its clocks and its history.
CREATE VIEW order_facts_source AS
SELECT o.id AS order_id, o.project_id, o.received_at,
       NOT (o.status = 'cancelled' AND o.finished_at IS NULL) AS counted,
       o.team_id, o.assignee_id, o.category, o.kind, o.status, o.finished_at,
       extract(epoch FROM ev.accepted_at - o.received_at)::double precision AS response_s,
       extract(epoch FROM ev.arrived_at - o.received_at)::double precision AS arrival_s,
       extract(epoch FROM o.finished_at - o.received_at)::double precision AS completion_s,
       coalesce(ev.was_unfinished, false) AS was_unfinished,
       o.callback_at IS NOT NULL AS called_back,
       o.callback_rating AS rating,
       o.reopen_count > 0 AS reopened,
       o.man_hours,
       coalesce(ck.has_clocks, false) AS has_clocks,
       coalesce(ck.late, false) AS late,
       ck.late_after,
       coalesce(ck.pending, false) AS pending,
       ck.pending_until,
       coalesce(ck.breached, '{}') AS breached,
       coalesce(ck.due_kinds, '{}') AS due_kinds,
       coalesce(ck.due_deadlines, '{}') AS due_deadlines,
       tstzrange(o.received_at,
                 CASE WHEN s.settled_at < o.received_at THEN o.received_at ELSE s.settled_at END,
                 '[)') AS open_span
FROM orders o
CROSS JOIN LATERAL (
    -- A settled order is never open, even one settled without its timestamps (data moved in
    -- from elsewhere): it then counts as settled when received.
    SELECT least(CASE WHEN o.status IN ('done', 'callback', 'closed', 'cancelled')
                      THEN coalesce(o.finished_at, o.cancelled_at, o.received_at) END,
                 o.cancelled_at) AS settled_at
) s
LEFT JOIN LATERAL (
    SELECT min(e.at) FILTER (WHERE e.to_status = 'accepted') AS accepted_at,
           min(e.at) FILTER (WHERE e.to_status = 'on_site') AS arrived_at,
           bool_or(e.to_status = 'unfinished') AS was_unfinished
    FROM order_events e
    WHERE e.order_id = o.id AND e.to_status IN ('accepted', 'on_site', 'unfinished')
) ev ON true
LEFT JOIN LATERAL (
    SELECT bool_or(c.timing AND c.state <> 'cancelled') AS has_clocks,
           bool_or(c.timing AND c.fixed) AS late,
           min(c.deadline) FILTER (WHERE c.timing AND c.due) AS late_after,
           bool_or(c.timing AND c.state IN ('running', 'paused') AND NOT c.fixed AND NOT c.due) AS pending,
           max(c.deadline) FILTER (WHERE c.timing AND c.due AND c.state = 'running') AS pending_until,
           array_agg(c.kind ORDER BY c.id) FILTER (WHERE c.fixed) AS breached,
           array_agg(c.kind ORDER BY c.id) FILTER (WHERE c.due) AS due_kinds,
           array_agg(c.deadline ORDER BY c.id) FILTER (WHERE c.due) AS due_deadlines
    FROM (
        SELECT c.id, c.kind, c.state, c.deadline,
               c.kind IN ('arrival', 'completion') AS timing,
               -- missed whenever judged: its breach recorded, stopped late, paused after it
               coalesce(c.state = 'breached' OR c.breached_at IS NOT NULL
                        OR (c.paused_at IS NULL AND c.state IN ('running', 'cancelled') AND c.ended_at > c.deadline)
                        OR (c.paused_at IS NOT NULL AND c.paused_at > c.deadline), false) AS fixed,
               -- missed once judged after its deadline: running (or cancelled) without an end
               NOT coalesce(c.state = 'breached' OR c.breached_at IS NOT NULL
                            OR (c.paused_at IS NOT NULL AND c.paused_at > c.deadline), false)
                   AND c.paused_at IS NULL AND c.state IN ('running', 'cancelled') AND c.ended_at IS NULL AS due
        FROM order_clocks c
        WHERE c.order_id = o.id
    ) c
) ck ON true;

-- Recompute the facts of the given orders.
CREATE FUNCTION order_facts_refresh(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO order_facts
    SELECT * FROM order_facts_source WHERE order_id = ANY(ids) ORDER BY order_id
    ON CONFLICT (order_id) DO UPDATE SET
        project_id = EXCLUDED.project_id, received_at = EXCLUDED.received_at, counted = EXCLUDED.counted,
        team_id = EXCLUDED.team_id, assignee_id = EXCLUDED.assignee_id, category = EXCLUDED.category,
        kind = EXCLUDED.kind, status = EXCLUDED.status, finished_at = EXCLUDED.finished_at,
        response_s = EXCLUDED.response_s, arrival_s = EXCLUDED.arrival_s, completion_s = EXCLUDED.completion_s,
        was_unfinished = EXCLUDED.was_unfinished, called_back = EXCLUDED.called_back,
        rating = EXCLUDED.rating, reopened = EXCLUDED.reopened, man_hours = EXCLUDED.man_hours,
        has_clocks = EXCLUDED.has_clocks, late = EXCLUDED.late, late_after = EXCLUDED.late_after,
        pending = EXCLUDED.pending, pending_until = EXCLUDED.pending_until, breached = EXCLUDED.breached,
        due_kinds = EXCLUDED.due_kinds, due_deadlines = EXCLUDED.due_deadlines, open_span = EXCLUDED.open_span
    WHERE (order_facts.*) IS DISTINCT FROM (EXCLUDED.*)
$$;

-- Bring the facts of every changed order up to date; return how many orders were recomputed.
-- Call it in a READ COMMITTED transaction of its own (each statement sees what committed before).
CREATE FUNCTION order_facts_flush() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('order_facts_flush'));
    WITH gone AS (DELETE FROM order_facts_stale RETURNING order_id)
    SELECT array_agg(DISTINCT order_id) INTO ids FROM gone;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM order_facts_refresh(ids);
    RETURN cardinality(ids);
END
$$;

CREATE FUNCTION order_facts_mark_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_facts_stale (order_id) SELECT DISTINCT id FROM changed;
    RETURN NULL;
END
$$;
CREATE FUNCTION order_facts_mark_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_facts_stale (order_id) SELECT DISTINCT order_id FROM changed;
    RETURN NULL;
END
$$;
CREATE FUNCTION order_facts_mark_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_facts_stale (order_id)
    SELECT DISTINCT order_id FROM changed WHERE to_status IN ('accepted', 'on_site', 'unfinished');
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_facts_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION order_facts_mark_orders();
CREATE TRIGGER orders_facts_update AFTER UPDATE ON orders
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION order_facts_mark_orders();
CREATE TRIGGER order_clocks_facts_insert AFTER INSERT ON order_clocks
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION order_facts_mark_children();
CREATE TRIGGER order_clocks_facts_update AFTER UPDATE ON order_clocks
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION order_facts_mark_children();
CREATE TRIGGER order_events_facts_insert AFTER INSERT ON order_events
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION order_facts_mark_events();

-- Backfill every existing order.
INSERT INTO order_facts SELECT * FROM order_facts_source;
ANALYZE order_facts;
