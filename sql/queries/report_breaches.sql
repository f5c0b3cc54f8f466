-- Missed clocks of the period's orders by clock kind, every kind, judged at :now: those missed
-- for good, and those running past their deadline. An order counts once per kind (the first
-- occurrence of that kind in its list).
SELECT u.kind,
       count(*) AS clocks,
       count(*) FILTER (WHERE array_position(b.kinds, u.kind) = u.i) AS orders
FROM period_facts f
CROSS JOIN LATERAL (
    SELECT CASE WHEN cardinality(f.due_kinds) = 0 THEN f.breached
                ELSE f.breached || ARRAY(SELECT d.kind FROM unnest(f.due_kinds, f.due_deadlines) AS d(kind, deadline)
                                         WHERE d.deadline < :now)
           END AS kinds
) b
CROSS JOIN LATERAL unnest(b.kinds) WITH ORDINALITY AS u(kind, i)
WHERE cardinality(f.breached) > 0 OR cardinality(f.due_kinds) > 0
GROUP BY u.kind
ORDER BY orders DESC, u.kind
