-- Response (received → first accepted), arrival (received → first on site) and completion
-- (received → done) times in seconds: how many, median and 90th percentile.
SELECT
    count(f.accepted_at) AS response_n,
    percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM f.accepted_at - f.received_at))
        FILTER (WHERE f.accepted_at IS NOT NULL) AS response_pct,
    count(f.arrived_at) AS arrival_n,
    percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM f.arrived_at - f.received_at))
        FILTER (WHERE f.arrived_at IS NOT NULL) AS arrival_pct,
    count(f.finished_at) AS completion_n,
    percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY extract(epoch FROM f.finished_at - f.received_at))
        FILTER (WHERE f.finished_at IS NOT NULL) AS completion_pct
FROM order_facts f
