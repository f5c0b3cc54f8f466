-- Claim running clocks past their deadline whose breach is not recorded yet (optionally of
-- one order); one whose recording failed waits a minute (breach_failed_at) before its retry. SKIP LOCKED lets concurrent workers split the work; the conditional SET makes
-- each breach recorded exactly once even when two workers race on one row.
WITH due AS (
    SELECT c.id
    FROM order_clocks c
    WHERE c.state = 'running'
      AND c.breached_at IS NULL
      AND c.deadline <= :now
      AND (c.breach_failed_at IS NULL OR c.breach_failed_at <= CAST(:now AS timestamptz) - interval '1 minute')
      AND (CAST(:order_id AS bigint) IS NULL OR c.order_id = CAST(:order_id AS bigint))
    ORDER BY c.deadline
    LIMIT :lim
    FOR UPDATE OF c SKIP LOCKED
)
UPDATE order_clocks c
SET breached_at = :now
FROM due
WHERE c.id = due.id AND c.breached_at IS NULL
RETURNING c.id, c.order_id, c.kind, c.deadline
