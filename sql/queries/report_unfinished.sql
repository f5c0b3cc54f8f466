-- The period's orders still not done more than 24 h after they were received (oldest first),
-- with the total before the limit.
SELECT o.number, o.received_at, o.status, o.category, o.location, o.promised_at,
       coalesce(tm.name, '') AS team_name,
       coalesce(st.display_name, '') AS engineer_name,
       extract(epoch FROM CAST(:now AS timestamptz) - o.received_at) AS age_seconds,
       count(*) OVER () AS total
FROM period_orders po
JOIN orders o ON o.id = po.id
LEFT JOIN teams tm ON tm.id = o.team_id
LEFT JOIN staff st ON st.id = o.assignee_id
WHERE po.status NOT IN ('done', 'callback', 'closed')
  AND po.received_at < CAST(:now AS timestamptz) - interval '24 hours'
ORDER BY o.received_at, o.id
LIMIT :lim
