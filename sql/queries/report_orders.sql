-- Shared head of every report query (prepended by server/persistence/reports.py). The report's
-- definitions (server/domain/stats.py, shown on the page) live here and in order_facts_source
-- (sql/migrations/0014_report_facts.sql), once, for the report page, its exports and the wall
-- board's panel alike. It reads order_facts (one narrow row per order, brought up to date by
-- order_facts_flush() just before), never the orders, clocks or history themselves.
--
-- Parameters: :project_ids; :start_at, :end_at (local midnights of the project's zone, computed
-- by the caller: constants let the planner estimate the row count); :now; :as_of (the end of the
-- period, or :now while it runs); :team_id, :engineer_id (NULL: everyone).
--
-- engineer_team: an engineer's team in each project (the first, when in several). An order's team
-- for reports is the team it was transferred to, otherwise its engineer's (looked up now, as the
-- teams are now).
WITH engineer_team AS (
    SELECT st.staff_id, t.project_id, min(t.id) AS team_id
    FROM staff_teams st
    JOIN teams t ON t.id = st.team_id
    WHERE t.project_id = ANY(CAST(:project_ids AS integer[]))
    GROUP BY st.staff_id, t.project_id
),
-- period_facts: one row per order received in [:start_at, :end_at) with every fact a rate counts
-- (stats.py's definitions). An order cancelled without ever being done is left out (no service
-- was given: not `counted`); one cancelled after it was done still counts as done. 基本满意 counts
-- as satisfied in the projects :fairly_projects (those whose setting says so).
-- Timeliness over the arrival and completion clocks, judged at :now: late = one missed (for
-- good, or running past its deadline); pending = none missed but one undecided (paused in time,
-- or running before its deadline); timed = decided (late, or clocks all met); an order without
-- such clocks is neither timed nor pending.
-- team_id is the order's own (transferred to) team; its engineer's is looked up where needed
-- (report_rates.sql, after grouping; the :team_id focus here).
period_facts AS NOT MATERIALIZED (
    SELECT f.order_id AS id, f.project_id, f.team_id, f.assignee_id, f.category, f.received_at,
           f.response_s, f.arrival_s, f.completion_s, f.man_hours,
           f.finished_at IS NOT NULL AS done,
           j.late OR (f.has_clocks AND NOT j.pending) AS timed,
           f.has_clocks AND NOT j.late AND NOT j.pending AS timely,
           NOT j.late AND j.pending AS timing_pending,
           f.finished_at IS NOT NULL AND f.called_back AS called_back,
           CASE WHEN f.finished_at IS NOT NULL THEN f.rating END AS rating,
           f.finished_at IS NOT NULL AND f.rating = 'fairly'
               AND f.project_id = ANY(CAST(:fairly_projects AS integer[])) AS fairly_counted,
           f.finished_at IS NOT NULL AND f.reopened AS reworked,
           f.finished_at IS NOT NULL AND NOT f.reopened AND NOT f.was_unfinished AS first_fix,
           f.status IN ('new', 'pooled', 'assigned', 'accepted', 'on_site', 'paused', 'unfinished') AS open,
           f.breached, f.due_kinds, f.due_deadlines
    FROM order_facts f
    CROSS JOIN LATERAL (
        SELECT f.late OR coalesce(f.late_after < :now, false) AS late,
               f.pending OR coalesce(f.pending_until >= :now, false) AS pending
    ) j
    WHERE f.project_id = ANY(CAST(:project_ids AS integer[]))
      AND f.received_at >= :start_at AND f.received_at < :end_at
      AND f.counted
      AND (CAST(:team_id AS integer) IS NULL
           OR coalesce(f.team_id, (SELECT et.team_id FROM engineer_team et
                                   WHERE et.staff_id = f.assignee_id AND et.project_id = f.project_id))
              = CAST(:team_id AS integer))
      AND (CAST(:engineer_id AS integer) IS NULL OR f.assignee_id = CAST(:engineer_id AS integer))
),
-- unfinished_24h: unfinished over 24 h at :as_of, whenever received (orders carried over from
-- before the period included): received more than 24 h before :as_of, and by then neither done
-- nor cancelled (open_span: from receipt until done or cancelled; a reopened order counts as not
-- done). The GiST index on open_span finds the few orders open at :as_of.
unfinished_24h AS (
    SELECT f.order_id AS id, f.received_at,
           coalesce(f.team_id, et.team_id) AS team_id, f.assignee_id
    FROM order_facts f
    LEFT JOIN engineer_team et ON et.staff_id = f.assignee_id AND et.project_id = f.project_id
    WHERE f.open_span @> CAST(:as_of AS timestamptz)
      AND f.project_id = ANY(CAST(:project_ids AS integer[]))
      AND f.received_at < CAST(:as_of AS timestamptz) - interval '24 hours'
      AND (CAST(:team_id AS integer) IS NULL OR coalesce(f.team_id, et.team_id) = CAST(:team_id AS integer))
      AND (CAST(:engineer_id AS integer) IS NULL OR f.assignee_id = CAST(:engineer_id AS integer))
)
