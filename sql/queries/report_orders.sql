-- Shared head of every report query (prepended by server/persistence/reports.py).
-- period_orders: the period's orders of the chosen projects received in [:start_at, :end_at)
-- (local midnights of the project's time zone, computed by the caller: constants let the planner
-- estimate the row count), cancelled orders left out of everything.
-- timed: per order, whether it had an arrival or completion clock and whether any was breached
-- (breach recorded, judged late when stopped, or still running past its deadline at :now).
-- A clock cancelled after its breach was recorded still counts as breached.
WITH period_orders AS (
    SELECT o.id, o.project_id, o.team_id, o.assignee_id, o.category, o.status,
           o.received_at, o.accepted_at, o.arrived_at, o.finished_at, o.callback_at, o.callback_rating,
           o.reopen_count, o.man_hours, p.count_fairly_satisfied
    FROM orders o
    JOIN projects p ON p.id = o.project_id
    WHERE o.project_id = ANY(CAST(:project_ids AS integer[]))
      AND o.received_at >= :start_at AND o.received_at < :end_at
      AND o.status <> 'cancelled'
),
timed AS (
    SELECT c.order_id,
           bool_or(c.state = 'breached' OR c.breached_at IS NOT NULL
                   OR (c.state = 'running' AND c.deadline < :now)) AS breached
    FROM period_orders po
    JOIN order_clocks c ON c.order_id = po.id
    WHERE c.kind IN ('arrival', 'completion')
      AND (c.state <> 'cancelled' OR c.breached_at IS NOT NULL)
    GROUP BY c.order_id
)
