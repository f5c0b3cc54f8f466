-- Response (received → accepted), arrival (received → on site) and completion
-- (received → finished) times in seconds: how many, median and 90th percentile.
SELECT
    count(po.accepted_at) AS response_n,
    percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM po.accepted_at - po.received_at))
        FILTER (WHERE po.accepted_at IS NOT NULL) AS response_pct,
    count(po.arrived_at) AS arrival_n,
    percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM po.arrived_at - po.received_at))
        FILTER (WHERE po.arrived_at IS NOT NULL) AS arrival_pct,
    count(po.finished_at) AS completion_n,
    percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM po.finished_at - po.received_at))
        FILTER (WHERE po.finished_at IS NOT NULL) AS completion_pct
FROM period_orders po
