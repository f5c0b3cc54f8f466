-- The wall board of one project in one round trip (GET /board/fragment).
-- One row: the open orders, each with its most urgent clock (the earliest running one, else the
-- paused one), the assignee's name and whether an alert is open on it; the unacknowledged
-- alerts with their order; the on-call rota with names. Aggregated as JSON so that the whole
-- board is one statement however many cards it has.
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
    SELECT al.id, al.kind, al.title, al.chain, al.next_step_index, al.started_at, al.stuck_since,
           o.number, o.location
    FROM alerts al
    LEFT JOIN orders o ON o.id = al.order_id
    WHERE al.project_id = :project_id AND al.state = 'triggered'
),
shifts AS (
    SELECT s.kind, s.starts, s.ends, pr.display_name AS primary_name, bk.display_name AS backup_name
    FROM oncall_shifts s
    JOIN staff pr ON pr.id = s.primary_id
    LEFT JOIN staff bk ON bk.id = s.backup_id
    WHERE s.project_id = :project_id
)
SELECT p.id, p.code, p.name, p.tz, p.business_hours,
       (SELECT coalesce(json_agg(cards ORDER BY coalesce(cards.next_deadline, cards.deadline) NULLS LAST, cards.id),
                        '[]') FROM cards) AS cards,
       (SELECT coalesce(json_agg(open_alerts ORDER BY open_alerts.started_at, open_alerts.id), '[]')
        FROM open_alerts) AS alerts,
       (SELECT coalesce(json_agg(shifts ORDER BY shifts.starts), '[]') FROM shifts) AS shifts
FROM projects p
WHERE p.id = :project_id
