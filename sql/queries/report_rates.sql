-- The rate counts of every breakdown in one pass: the whole period, and per project, team,
-- engineer (assignee) and category (GROUPING SETS). Names are looked up after grouping.
SELECT g.*,
       coalesce(pj.name, '') AS project_name,
       coalesce(tm.name, '') AS team_name,
       coalesce(st.display_name, '') AS engineer_name
FROM (
    SELECT
        CASE WHEN GROUPING(po.project_id) = 0 THEN 'project'
             WHEN GROUPING(po.team_id) = 0 THEN 'team'
             WHEN GROUPING(po.assignee_id) = 0 THEN 'engineer'
             WHEN GROUPING(po.category) = 0 THEN 'category'
             ELSE 'overview' END AS breakdown,
        po.project_id, po.team_id, po.assignee_id, po.category,
        count(*) AS received,
        count(*) FILTER (WHERE po.finished_at IS NOT NULL) AS done,
        count(t.order_id) AS timed,
        count(t.order_id) FILTER (WHERE NOT t.breached) AS timely,
        count(*) FILTER (WHERE po.finished_at IS NOT NULL AND po.callback_at IS NOT NULL) AS called_back,
        count(*) FILTER (WHERE po.finished_at IS NOT NULL AND po.callback_rating IS NOT NULL) AS rated,
        count(*) FILTER (WHERE po.finished_at IS NOT NULL AND po.callback_rating = 'satisfied') AS satisfied,
        count(*) FILTER (WHERE po.finished_at IS NOT NULL AND po.callback_rating = 'fairly') AS fairly,
        count(*) FILTER (WHERE po.finished_at IS NOT NULL AND po.callback_rating = 'unsatisfied') AS unsatisfied,
        count(*) FILTER (WHERE po.finished_at IS NOT NULL AND po.callback_rating = 'fairly'
                         AND po.count_fairly_satisfied) AS fairly_counted,
        count(*) FILTER (WHERE po.finished_at IS NOT NULL AND po.reopen_count > 0) AS reworked,
        count(*) FILTER (WHERE po.finished_at IS NOT NULL AND po.reopen_count = 0
                         AND NOT EXISTS (SELECT 1 FROM order_events e
                                         WHERE e.order_id = po.id AND e.to_status = 'unfinished')) AS first_fix,
        count(*) FILTER (WHERE po.status NOT IN ('done', 'callback', 'closed')) AS open,
        coalesce(sum(po.man_hours), 0) AS man_hours,
        avg(extract(epoch FROM po.finished_at - po.received_at)) AS completion_avg
    FROM period_orders po
    LEFT JOIN timed t ON t.order_id = po.id
    GROUP BY GROUPING SETS ((), (po.project_id), (po.team_id), (po.assignee_id), (po.category))
) g
LEFT JOIN projects pj ON pj.id = g.project_id
LEFT JOIN teams tm ON tm.id = g.team_id
LEFT JOIN staff st ON st.id = g.assignee_id
ORDER BY g.breakdown, g.received DESC, g.project_id, g.team_id, g.assignee_id, g.category
