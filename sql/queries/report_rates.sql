-- The rate counts of every breakdown: the whole period, and per project, team, engineer (assignee)
-- and category. Counted once per finest group (project, own team, engineer, category: a few
-- hundred rows), whose team is then resolved (the engineer's when the order has none of its own),
-- then summed up by GROUPING SETS; names are looked up after grouping.
WITH fine AS (
    SELECT f.project_id, f.team_id, f.assignee_id, f.category,
           {{counts}},
           sum(f.completion_s) AS completion_seconds
    FROM period_facts f
    GROUP BY f.project_id, f.team_id, f.assignee_id, f.category
), resolved AS (
    SELECT x.project_id, coalesce(x.team_id, et.team_id) AS team_id, x.assignee_id, x.category,
           {{columns}}, x.completion_seconds
    FROM fine x
    LEFT JOIN engineer_team et ON et.staff_id = x.assignee_id AND et.project_id = x.project_id
)
SELECT g.*,
       coalesce(pj.name, '') AS project_name,
       coalesce(tm.name, '') AS team_name,
       coalesce(st.display_name, '') AS engineer_name
FROM (
    SELECT
        CASE WHEN GROUPING(x.project_id) = 0 THEN 'project'
             WHEN GROUPING(x.team_id) = 0 THEN 'team'
             WHEN GROUPING(x.assignee_id) = 0 THEN 'engineer'
             WHEN GROUPING(x.category) = 0 THEN 'category'
             ELSE 'overview' END AS breakdown,
        x.project_id, x.team_id, x.assignee_id, x.category,
        {{sums}},
        sum(x.completion_seconds) / nullif(sum(x.done), 0) AS completion_avg
    FROM resolved x
    GROUP BY GROUPING SETS ((), (x.project_id), (x.team_id), (x.assignee_id), (x.category))
) g
LEFT JOIN projects pj ON pj.id = g.project_id
LEFT JOIN teams tm ON tm.id = g.team_id
LEFT JOIN staff st ON st.id = g.assignee_id
ORDER BY g.breakdown, g.received DESC, g.project_id, g.team_id, g.assignee_id, g.category
