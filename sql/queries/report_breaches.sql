-- Breached clocks of the period's orders by clock kind (same breach test as `timed`).
SELECT c.kind,
       count(*) AS clocks,
       count(DISTINCT c.order_id) AS orders
FROM period_orders po
JOIN order_clocks c ON c.order_id = po.id
WHERE c.state = 'breached' OR c.breached_at IS NOT NULL OR (c.state = 'running' AND c.deadline < :now)
GROUP BY c.kind
ORDER BY orders DESC, c.kind
