-- Orders (issue 3): the fee the customer agreed to (over 500 yuan with prepayment before work
-- starts), when work started on site, and the rework order's link back (reopened_from_id is in
-- 0002) made cheap to follow.
ALTER TABLE orders ADD COLUMN agreed_fen integer NOT NULL DEFAULT 0 CHECK (agreed_fen >= 0);
ALTER TABLE orders ADD COLUMN started_at timestamptz;
CREATE INDEX orders_reopened_from ON orders (reopened_from_id) WHERE reopened_from_id IS NOT NULL;
CREATE INDEX orders_parent ON orders (parent_order_id) WHERE parent_order_id IS NOT NULL;

-- Dispatch per project and category: which team a new repair goes to and whether it waits in
-- that team's grab pool (抢单) or at the desk for assignment (派单). No rule: the project's
-- dispatch_mode and no team (every engineer of the project sees the pool).
CREATE TABLE dispatch_rules (
    id          serial PRIMARY KEY,
    project_id  integer NOT NULL REFERENCES projects(id),
    category    text NOT NULL,
    team_id     integer REFERENCES teams(id),
    mode        text NOT NULL CHECK (mode IN ('grab', 'assign')),
    UNIQUE (project_id, category)
);
