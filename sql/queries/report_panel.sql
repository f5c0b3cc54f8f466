-- The wall board's statistics panel for one project: this month so far and today
-- ([:month_at, :end_at) and [:today_at, :end_at): local midnights), plus every order open > 24 h.
WITH month_orders AS (
    SELECT o.id, o.received_at, o.finished_at, o.callback_rating, p.count_fairly_satisfied,
           o.received_at >= :today_at AS is_today
    FROM orders o
    JOIN projects p ON p.id = o.project_id
    WHERE o.project_id = :project_id AND o.status <> 'cancelled'
      AND o.received_at >= :month_at AND o.received_at < :end_at
),
timed AS (
    SELECT c.order_id,
           bool_or(c.state = 'breached' OR c.breached_at IS NOT NULL
                   OR (c.state = 'running' AND c.deadline < :now)) AS breached
    FROM month_orders mo
    JOIN order_clocks c ON c.order_id = mo.id
    WHERE c.kind IN ('arrival', 'completion')
      AND (c.state <> 'cancelled' OR c.breached_at IS NOT NULL)
    GROUP BY c.order_id
)
SELECT
    grp.today AS is_today,
    count(mo.id) AS received,
    count(mo.finished_at) AS done,
    count(t.order_id) AS timed,
    count(t.order_id) FILTER (WHERE NOT t.breached) AS timely,
    count(*) FILTER (WHERE mo.finished_at IS NOT NULL AND mo.callback_rating IS NOT NULL) AS rated,
    count(*) FILTER (WHERE mo.finished_at IS NOT NULL AND mo.callback_rating = 'satisfied') AS satisfied,
    count(*) FILTER (WHERE mo.finished_at IS NOT NULL AND mo.callback_rating = 'fairly'
                     AND mo.count_fairly_satisfied) AS fairly_counted,
    (SELECT count(*) FROM orders o
     WHERE o.project_id = :project_id AND o.status NOT IN ('done', 'callback', 'closed', 'cancelled')
       AND o.received_at < CAST(:now AS timestamptz) - interval '24 hours') AS unfinished_24h
FROM (VALUES (false), (true)) AS grp(today)
LEFT JOIN month_orders mo ON (NOT grp.today OR mo.is_today)
LEFT JOIN timed t ON t.order_id = mo.id
GROUP BY grp.today
ORDER BY grp.today
