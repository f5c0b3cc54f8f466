-- The engineer's tablet: my open orders, my department's unassigned matters, and the grab
-- pool of my teams (an order with no team is in every engineering team's pool).
SELECT o.id, o.number, o.project_id, o.kind, o.category, o.urgency, o.status, o.version, o.location,
       o.summary, o.content, o.reporter_name, o.reporter_phone, o.appointment_at, o.assignee_id, o.team_id,
       o.department_code, o.verification_code, o.paused_from, o.designated_engineer_id, o.total_fen,
       o.agreement_recorded, o.prepaid, o.reopen_count, o.next_deadline, o.next_clock, o.received_at,
       a.display_name AS assignee_name
FROM orders o
LEFT JOIN staff a ON a.id = o.assignee_id
WHERE o.project_id = ANY(:pids)
  AND o.status NOT IN ('closed', 'cancelled', 'done', 'callback')
  AND (
        o.assignee_id = :me
     OR (o.status = 'pooled' AND (o.team_id IS NULL OR o.team_id = ANY(:teams)))
     OR (o.assignee_id IS NULL AND o.kind = 'matter' AND o.department_code = :dept)
  )
ORDER BY o.next_deadline NULLS LAST, o.id
LIMIT 200
