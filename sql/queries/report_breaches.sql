-- Breached clocks of the period's orders by clock kind (the breach test of period_clocks).
SELECT c.kind,
       count(*) AS clocks,
       count(DISTINCT c.order_id) AS orders
FROM period_clocks c
JOIN period_orders po ON po.id = c.order_id
WHERE c.breached
GROUP BY c.kind
ORDER BY orders DESC, c.kind
