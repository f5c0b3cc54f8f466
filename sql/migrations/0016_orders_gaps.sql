-- Orders (issue 3): the fee the customer agreed to (over 500 yuan with prepayment before work
-- starts), when work started on site, and the rework order's link back (reopened_from_id is in
-- 0002) made cheap to follow.
ALTER TABLE orders ADD COLUMN agreed_fen integer NOT NULL DEFAULT 0 CHECK (agreed_fen >= 0);
ALTER TABLE orders ADD COLUMN started_at timestamptz;
CREATE INDEX orders_reopened_from ON orders (reopened_from_id) WHERE reopened_from_id IS NOT NULL;
CREATE INDEX orders_parent ON orders (parent_order_id) WHERE parent_order_id IS NOT NULL;
