-- Shared head of every report query (prepended by server/persistence/reports.py). The report's
-- definitions (server/domain/stats.py, shown on the page) live here, once, for the report page,
-- its exports and the wall board's panel alike.
--
-- Parameters: :project_ids; :start_at, :end_at (local midnights of the project's zone, computed
-- by the caller: constants let the planner estimate the row count); :now; :as_of (the end of the
-- period, or :now while it runs); :team_id, :engineer_id (NULL: everyone); :id_lo, :id_hi (the
-- lowest and highest id of the period's orders, from report_id_range.sql).
--
-- engineer_team: an engineer's team in each project (the first, when in several). An order's team
-- for reports is the team it was transferred to, otherwise its engineer's.
WITH engineer_team AS (
    SELECT st.staff_id, t.project_id, min(t.id) AS team_id
    FROM staff_teams st
    JOIN teams t ON t.id = st.team_id
    WHERE t.project_id = ANY(CAST(:project_ids AS integer[]))
    GROUP BY st.staff_id, t.project_id
),
-- period_orders: received in [:start_at, :end_at). An order cancelled without ever being done is
-- left out (no service was given); one cancelled after it was done still counts as done. Their ids
-- lie close together: the clock and history joins below are bounded by that id range (given as
-- constants, so the planner sees how much it covers), so they read about one month's rows, not
-- all the years'.
period_orders AS MATERIALIZED (
    SELECT o.id, o.project_id, coalesce(o.team_id, et.team_id) AS team_id, o.assignee_id, o.category,
           o.status, o.received_at, o.finished_at, o.callback_at, o.callback_rating, o.reopen_count,
           o.man_hours, p.count_fairly_satisfied
    FROM orders o
    JOIN projects p ON p.id = o.project_id
    LEFT JOIN engineer_team et ON et.staff_id = o.assignee_id AND et.project_id = o.project_id
    WHERE o.project_id = ANY(CAST(:project_ids AS integer[]))
      AND o.received_at >= :start_at AND o.received_at < :end_at
      AND NOT (o.status = 'cancelled' AND o.finished_at IS NULL)
      AND (CAST(:team_id AS integer) IS NULL OR coalesce(o.team_id, et.team_id) = CAST(:team_id AS integer))
      AND (CAST(:engineer_id AS integer) IS NULL OR o.assignee_id = CAST(:engineer_id AS integer))
),
-- period_clocks: the arrival and completion clocks, and every breached clock, in the period's
-- id range (a few belong to other orders: each use joins them to period_orders), judged at :now.
-- Breached: its breach was recorded, it stopped late, it is running (or was cancelled) past its
-- deadline, or it was paused after it. Undecided: running or paused and not (yet) breached. A
-- clock cancelled in time (a transfer, a cancellation) is no one's fault and left out; a later
-- run of the same clock (a new appointment, a reopening) counts too.
period_clocks AS MATERIALIZED (
    SELECT j.order_id, j.kind, j.breached, j.state IN ('running', 'paused') AS undecided
    FROM (
        SELECT c.order_id, c.kind, c.state,
               (c.state = 'breached' OR c.breached_at IS NOT NULL
                OR (c.paused_at IS NULL AND c.state IN ('running', 'cancelled')
                    AND coalesce(c.ended_at, :now) > c.deadline)
                OR (c.paused_at IS NOT NULL AND c.paused_at > c.deadline)) AS breached
        FROM order_clocks c
        WHERE c.order_id BETWEEN :id_lo AND :id_hi
    ) j
    WHERE (j.state <> 'cancelled' OR j.breached)
      AND (j.kind IN ('arrival', 'completion') OR j.breached)  -- what timing and breaches read
),
-- timing: per order, over its arrival and completion clocks. Timely = every such clock met;
-- late = any breached; pending = none breached but some still undecided.
timing AS (
    SELECT order_id,
           bool_or(breached) AS late,
           bool_or(undecided AND NOT breached) AS pending
    FROM period_clocks
    WHERE kind IN ('arrival', 'completion')
    GROUP BY order_id
),
-- first_steps: per order in the id range, the FIRST acceptance and arrival (response and arrival
-- times mean the first response, whatever re-dispatch followed), and whether it was ever
-- reported unfinished.
first_steps AS (
    SELECT e.order_id,
           min(e.at) FILTER (WHERE e.to_status = 'accepted') AS accepted_at,
           min(e.at) FILTER (WHERE e.to_status = 'on_site') AS arrived_at,
           bool_or(e.to_status = 'unfinished') AS was_unfinished
    FROM order_events e
    WHERE e.to_status IN ('accepted', 'on_site', 'unfinished')
      AND e.order_id BETWEEN :id_lo AND :id_hi
    GROUP BY e.order_id
),
-- order_facts: one row per period order with every fact a rate counts (stats.py's definitions).
order_facts AS MATERIALIZED (
    SELECT po.id, po.project_id, po.team_id, po.assignee_id, po.category, po.received_at, po.finished_at,
           fs.accepted_at, fs.arrived_at, po.man_hours,
           po.finished_at IS NOT NULL AS done,
           coalesce(t.late OR NOT t.pending, false) AS timed,
           coalesce(NOT t.late AND NOT t.pending, false) AS timely,
           coalesce(NOT t.late AND t.pending, false) AS timing_pending,
           po.finished_at IS NOT NULL AND po.callback_at IS NOT NULL AS called_back,
           CASE WHEN po.finished_at IS NOT NULL THEN po.callback_rating END AS rating,
           po.finished_at IS NOT NULL AND po.callback_rating = 'fairly' AND po.count_fairly_satisfied
               AS fairly_counted,
           po.finished_at IS NOT NULL AND po.reopen_count > 0 AS reworked,
           po.finished_at IS NOT NULL AND po.reopen_count = 0 AND NOT coalesce(fs.was_unfinished, false)
               AS first_fix,
           po.status IN ('new', 'pooled', 'assigned', 'accepted', 'on_site', 'paused', 'unfinished') AS open
    FROM period_orders po
    LEFT JOIN timing t ON t.order_id = po.id
    LEFT JOIN first_steps fs ON fs.order_id = po.id
),
-- unfinished_24h: unfinished over 24 h at :as_of, whenever received (orders carried over from
-- before the period included): received more than 24 h before :as_of, and by then neither done
-- nor cancelled. An order open now was open then (a reopened order counts as not done). Only
-- orders open now or changed after :as_of can qualify: that keeps the scan to a few rows.
unfinished_24h AS (
    SELECT o.id, o.number, o.received_at, o.status, o.category, o.location, o.promised_at,
           coalesce(o.team_id, et.team_id) AS team_id, o.assignee_id
    FROM orders o
    LEFT JOIN engineer_team et ON et.staff_id = o.assignee_id AND et.project_id = o.project_id
    WHERE o.project_id = ANY(CAST(:project_ids AS integer[]))
      AND (o.status NOT IN ('done', 'callback', 'closed', 'cancelled')  -- open now (partial index)
           OR o.updated_at > :as_of)
      AND o.received_at < CAST(:as_of AS timestamptz) - interval '24 hours'
      AND NOT coalesce(o.finished_at <= :as_of AND o.status IN ('done', 'callback', 'closed', 'cancelled'), false)
      AND NOT coalesce(o.cancelled_at <= :as_of, false)
      AND (CAST(:team_id AS integer) IS NULL OR coalesce(o.team_id, et.team_id) = CAST(:team_id AS integer))
      AND (CAST(:engineer_id AS integer) IS NULL OR o.assignee_id = CAST(:engineer_id AS integer))
)
