-- The wall board of one project in one round trip (GET /board/fragment).
-- One row: the open orders, each with its most urgent clock (the earliest running one, else the
-- paused one), the assignee's name and whether an alert is open on it; the unacknowledged
-- alerts with their order; the on-call rota with names; the shift lists' counts (their
-- conditions are server/persistence/worklists.py's, put in place of /*shift_counts*/).
-- Aggregated as JSON so that the whole board is one statement however many cards it has.
WITH cards AS (
    SELECT o.id, o.number, o.kind, o.category, o.urgency, o.status, o.location, o.summary,
           o.reporter_name, o.reporter_phone, o.next_deadline,
           a.display_name AS assignee_name, d.name AS department_name,
           c.kind AS clock_kind, c.started_at, c.deadline, c.minutes, c.business_hours AS clock_business_hours,
           c.state AS clock_state, c.paused_at, c.paused_seconds,
           EXISTS (SELECT 1 FROM alerts al WHERE al.order_id = o.id AND al.state = 'triggered') AS alerting
    FROM orders o
    LEFT JOIN staff a ON a.id = o.assignee_id
    LEFT JOIN departments d ON d.code = o.department_code
    LEFT JOIN LATERAL (
        SELECT kind, started_at, deadline, minutes, business_hours, state, paused_at, paused_seconds
        FROM order_clocks
        WHERE order_id = o.id AND state IN ('running', 'paused')
        ORDER BY state = 'running' DESC, deadline
        LIMIT 1
    ) c ON true
    -- matches the partial index orders_open_project
    WHERE o.project_id = :project_id AND o.status NOT IN ('closed', 'cancelled')
),
open_alerts AS (
    SELECT al.id, al.kind, al.title, al.chain, al.next_step_index, al.next_step_at, al.started_at,
           al.stuck_since, o.number, o.location, o.summary
    FROM alerts al
    LEFT JOIN orders o ON o.id = al.order_id
    WHERE al.project_id = :project_id AND al.state = 'triggered'
),
shifts AS (
    SELECT s.id, s.project_id, s.kind, s.starts, s.ends, s.primary_id, s.backup_id, s.supervisor_id,
           s.manager_id, pr.display_name AS primary_name, bk.display_name AS backup_name
    FROM oncall_shifts s
    JOIN staff pr ON pr.id = s.primary_id
    LEFT JOIN staff bk ON bk.id = s.backup_id
    WHERE s.project_id = :project_id
),
shift_lists AS (
    SELECT /*shift_counts*/,
           -- when a count changes by time alone: an order turning 24 h old, a promise passing
           min(o.received_at) FILTER (WHERE /*open_unfinished*/ AND o.received_at >= CAST(:now AS timestamptz)
                                             - interval '24 hours') + interval '24 hours' AS over_24h_next,
           min(o.promised_at) FILTER (WHERE /*open_unfinished*/ AND o.promised_at > :now) AS promise_next
    FROM orders o
    -- only what a list can hold: open orders, or orders received since midnight (slips)
    WHERE o.project_id = :project_id AND (o.status NOT IN ('closed', 'cancelled') OR o.received_at >= :midnight)
)
SELECT p.id, p.code, p.name, p.tz, p.business_hours, p.desk_opens, p.desk_closes,
       -- one JSON text per card (not one document): the board parses only the rows that changed
       (SELECT coalesce(array_agg(row_to_json(cards)::text
                                  ORDER BY coalesce(cards.next_deadline, cards.deadline) NULLS LAST, cards.id),
                        ARRAY[]::text[]) FROM cards) AS cards,
       (SELECT coalesce(json_agg(open_alerts ORDER BY open_alerts.started_at, open_alerts.id), '[]')
        FROM open_alerts) AS alerts,
       (SELECT coalesce(json_agg(shifts ORDER BY shifts.starts, shifts.id), '[]') FROM shifts) AS shifts,
       shift_lists.*
FROM projects p, shift_lists
WHERE p.id = :project_id
