-- The counts behind every rate, over period_facts `f` (spliced into report_rates.sql and
-- report_panel.sql at {{counts}}: the report and the wall board's panel count alike).
count(f.id) AS received,
count(*) FILTER (WHERE f.done) AS done,
count(*) FILTER (WHERE f.timed) AS timed,
count(*) FILTER (WHERE f.timely) AS timely,
count(*) FILTER (WHERE f.timing_pending) AS timing_pending,
count(*) FILTER (WHERE f.called_back) AS called_back,
count(f.rating) AS rated,
count(*) FILTER (WHERE f.rating = 'satisfied') AS satisfied,
count(*) FILTER (WHERE f.rating = 'fairly') AS fairly,
count(*) FILTER (WHERE f.rating = 'unsatisfied') AS unsatisfied,
count(*) FILTER (WHERE f.fairly_counted) AS fairly_counted,
count(*) FILTER (WHERE f.reworked) AS reworked,
count(*) FILTER (WHERE f.first_fix) AS first_fix,
count(*) FILTER (WHERE f.open) AS open,
coalesce(sum(f.man_hours), 0) AS man_hours
