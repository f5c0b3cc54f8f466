-- The engineer's tablet: my open orders, my department's unassigned matters, and the grab
-- pool of my teams (an order with no team is in every engineering team's pool). Each row carries
-- its most urgent clock (order_urgent_clock, migration 0013: as the wall board picks it). Also
-- what I finished since :since (the start of my day), so a finish shows where it went.
SELECT o.id, o.number, o.project_id, p.tz, p.business_hours, o.kind, o.category, o.urgency, o.status,
       o.version, o.location, o.summary, o.content, o.reporter_name, o.reporter_phone, o.appointment_at,
       o.assignee_id, o.team_id, o.department_code, o.verification_code, o.paused_from,
       o.designated_engineer_id, o.total_fen, o.agreement_recorded, o.prepaid, o.reopen_count,
       o.next_deadline, o.received_at, o.pause_reason, o.promised_at, o.unfinished_reason, o.next_at,
       o.finished_at, o.result,
       a.display_name AS assignee_name, t.name AS team_name,
       c.kind AS clock_kind, c.started_at, c.deadline, c.minutes, c.business_hours AS clock_business_hours,
       c.state AS clock_state, c.paused_at, c.paused_seconds
FROM (
    -- Each part bounded on its own, so a crowded grab pool never hides my own orders or what I
    -- finished today.
    (SELECT o.id FROM orders o
     WHERE o.project_id = ANY(:pids) AND o.status NOT IN ('closed', 'cancelled', 'done', 'callback')
       AND (o.assignee_id = :me OR (o.assignee_id IS NULL AND o.kind = 'matter' AND o.department_code = :dept))
     ORDER BY o.next_deadline NULLS LAST, o.id LIMIT 200)
    UNION
    (SELECT o.id FROM orders o
     WHERE o.project_id = ANY(:pids) AND o.status = 'pooled' AND (o.team_id IS NULL OR o.team_id = ANY(:teams))
     ORDER BY o.next_deadline NULLS LAST, o.id LIMIT 200)
    UNION
    (SELECT o.id FROM orders o
     WHERE o.project_id = ANY(:pids) AND o.assignee_id = :me AND o.status IN ('done', 'callback', 'closed')
       AND o.finished_at >= :since
     ORDER BY o.finished_at DESC LIMIT 50)
) picked
JOIN orders o ON o.id = picked.id
JOIN projects p ON p.id = o.project_id
LEFT JOIN staff a ON a.id = o.assignee_id
LEFT JOIN teams t ON t.id = o.team_id
LEFT JOIN LATERAL order_urgent_clock(o.id) c ON true
ORDER BY coalesce(o.next_deadline, c.deadline) NULLS LAST, o.id
