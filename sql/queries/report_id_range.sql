-- The id range of the period's orders (id_lo, id_hi of report_orders.sql); NULL when there are none.
SELECT min(o.id) AS id_lo, max(o.id) AS id_hi
FROM orders o
WHERE o.project_id = ANY(CAST(:project_ids AS integer[]))
  AND o.received_at >= :start_at AND o.received_at < :end_at
