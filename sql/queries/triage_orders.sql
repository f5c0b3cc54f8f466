-- The supervisor's triage list: open orders, filtered, most urgent first; `breached` marks
-- orders with a recorded breach on a running clock.
SELECT o.id, o.number, o.project_id, p.code AS project_code, o.kind, o.category, o.urgency, o.status, o.version,
       o.location, o.summary, o.reporter_name, o.appointment_at, o.assignee_id, o.team_id, o.department_code,
       o.verification_code, o.paused_from, o.designated_engineer_id, o.total_fen, o.agreement_recorded,
       o.prepaid, o.reopen_count, o.next_deadline, o.next_clock, o.received_at,
       a.display_name AS assignee_name, t.name AS team_name,
       EXISTS (SELECT 1 FROM order_clocks c WHERE c.order_id = o.id AND c.state = 'running'
               AND c.breached_at IS NOT NULL) AS breached
FROM orders o
JOIN projects p ON p.id = o.project_id
LEFT JOIN staff a ON a.id = o.assignee_id
LEFT JOIN teams t ON t.id = o.team_id
WHERE o.project_id = ANY(:pids)
  AND o.status NOT IN ('closed', 'cancelled')
  AND (CAST(:project AS text) IS NULL OR p.code = CAST(:project AS text))
  AND (CAST(:team AS int) IS NULL OR o.team_id = CAST(:team AS int))
  AND (CAST(:category AS text) IS NULL OR o.category = CAST(:category AS text))
  AND (CAST(:kind AS text) IS NULL OR o.kind = CAST(:kind AS text))
  AND (CAST(:status AS text) IS NULL OR o.status = CAST(:status AS text))
  AND (NOT :breached OR EXISTS (SELECT 1 FROM order_clocks c WHERE c.order_id = o.id AND c.state = 'running'
                                AND c.breached_at IS NOT NULL))
ORDER BY o.next_deadline NULLS LAST, o.id
LIMIT 500
