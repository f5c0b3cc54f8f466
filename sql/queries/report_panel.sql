-- The wall board's statistics panel: the counts of report_rates.sql over the same period_facts
-- (the same definitions), for this month so far and for today (received at or after :today_at),
-- plus the unfinished-over-24-h count at :now (the head is run with :as_of = :now).
SELECT grp.today AS is_today,
       {{counts}},
       (SELECT count(*) FROM unfinished_24h) AS unfinished_24h
FROM (VALUES (false), (true)) AS grp(today)
LEFT JOIN period_facts f ON (NOT grp.today OR f.received_at >= :today_at)
GROUP BY grp.today
ORDER BY grp.today
