-- Completion times in buckets of hours (edges from server.domain.stats.HISTOGRAM_EDGES_HOURS):
-- bucket 0 is below the first edge, bucket n at or above the last.
SELECT width_bucket(extract(epoch FROM po.finished_at - po.received_at) / 3600.0,
                    CAST(:edges AS double precision[])) AS bucket,
       count(*) AS n
FROM period_orders po
WHERE po.finished_at IS NOT NULL
GROUP BY 1
ORDER BY 1
