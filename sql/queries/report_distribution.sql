-- Completion times in buckets of hours (edges from server.domain.stats.HISTOGRAM_EDGES_HOURS):
-- bucket 0 is below the first edge, bucket n at or above the last.
SELECT width_bucket(extract(epoch FROM f.finished_at - f.received_at) / 3600.0,
                    CAST(:edges AS double precision[])) AS bucket,
       count(*) AS n
FROM order_facts f
WHERE f.done
GROUP BY 1
ORDER BY 1
