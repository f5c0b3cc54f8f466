-- The tablet's alert strip as a version: which alerts are open in my projects and at which step
-- (each escalation step and acknowledgement bumps alerts.version). Uses alerts_project_open.
SELECT string_agg(id || '.' || version, ',' ORDER BY id)
FROM alerts
WHERE project_id = ANY(:pids) AND state = 'triggered'
