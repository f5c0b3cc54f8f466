-- Issue 4: a clock whose breach failed to record waits a minute before the next try, so a bad
-- row is retried later and never holds up the due clocks behind it.
ALTER TABLE order_clocks ADD COLUMN IF NOT EXISTS breach_failed_at timestamptz;
