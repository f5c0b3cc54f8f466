-- The supervisor's triage list: open orders of the caller's projects, filtered, most urgent first.
-- Each row carries its most urgent clock (order_urgent_clock, migration 0013: the earliest running
-- one, else the paused one, as the wall board picks it), so countdowns and colours agree with the wall.
-- `breached` compares that clock's deadline with :now: it does not wait for the breach worker.
-- `total` counts every match (the list shows at most 500).
SELECT o.id, o.number, o.project_id, p.code AS project_code, p.name AS project_name, p.tz, p.business_hours,
       o.kind, o.category, o.urgency, o.status, o.version, o.location, o.summary, o.reporter_name,
       o.appointment_at, o.assignee_id, o.team_id, o.department_code, o.verification_code, o.paused_from,
       o.designated_engineer_id, o.total_fen, o.agreement_recorded, o.prepaid, o.reopen_count,
       o.next_deadline, o.received_at, o.promised_at,
       a.display_name AS assignee_name, t.name AS team_name, d.name AS department_name,
       c.kind AS clock_kind, c.started_at, c.deadline, c.minutes, c.business_hours AS clock_business_hours,
       c.state AS clock_state, c.paused_at, c.paused_seconds,
       coalesce(c.state = 'running' AND c.deadline <= :now, false) AS breached,
       count(*) OVER () AS total
FROM orders o
JOIN projects p ON p.id = o.project_id
LEFT JOIN staff a ON a.id = o.assignee_id
LEFT JOIN teams t ON t.id = o.team_id
LEFT JOIN departments d ON d.code = o.department_code
LEFT JOIN LATERAL order_urgent_clock(o.id) c ON true
WHERE o.project_id = ANY(:pids)
  AND o.status NOT IN ('closed', 'cancelled')
  AND (CAST(:project AS text) IS NULL OR p.code = CAST(:project AS text))
  AND (CAST(:team AS int) IS NULL OR o.team_id = CAST(:team AS int))
  AND (CAST(:category AS text) IS NULL OR o.category = CAST(:category AS text))
  AND (CAST(:kind AS text) IS NULL OR o.kind = CAST(:kind AS text))
  AND (CAST(:status AS text) IS NULL OR o.status = CAST(:status AS text))
  AND (NOT :breached OR (c.state = 'running' AND c.deadline <= :now))
ORDER BY coalesce(o.next_deadline, c.deadline) NULLS LAST, o.id
LIMIT 500
