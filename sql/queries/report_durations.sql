-- Response (received → first accepted), arrival (received → first on site) and completion
-- (received → done) times in seconds: how many, median and 90th percentile; and the completion
-- times in buckets of hours (bucket_0 … bucket_n, as width_bucket counts over
-- :edges = server.domain.stats.HISTOGRAM_EDGES_HOURS: 0 below the first edge, n at or above the last).
SELECT
    count(f.response_s) AS response_n,
    percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY f.response_s)
        FILTER (WHERE f.response_s IS NOT NULL) AS response_pct,
    count(f.arrival_s) AS arrival_n,
    percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY f.arrival_s)
        FILTER (WHERE f.arrival_s IS NOT NULL) AS arrival_pct,
    count(f.completion_s) AS completion_n,
    percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY f.completion_s)
        FILTER (WHERE f.completion_s IS NOT NULL) AS completion_pct,
    {{buckets}}
FROM period_facts f
