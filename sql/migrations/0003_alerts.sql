-- On-call rota, escalation chains, alerts and their deliveries, elevators.

CREATE TABLE oncall_shifts (
    id             serial PRIMARY KEY,
    project_id     integer NOT NULL REFERENCES projects(id),
    kind           text NOT NULL CHECK (kind IN ('day', 'night', 'weekend', 'holiday')),
    starts         time NOT NULL,
    ends           time NOT NULL,              -- ends <= starts: crosses midnight
    primary_id     integer NOT NULL REFERENCES staff(id),
    backup_id      integer REFERENCES staff(id),
    supervisor_id  integer REFERENCES staff(id),
    manager_id     integer REFERENCES staff(id),
    CHECK (backup_id IS NULL OR backup_id <> primary_id)
);
CREATE INDEX oncall_shifts_project ON oncall_shifts (project_id);

CREATE TABLE escalation_chains (
    id          serial PRIMARY KEY,
    project_id  integer REFERENCES projects(id),          -- NULL: default for all
    alert_kind  text NOT NULL CHECK (alert_kind IN ('entrapment', 'emergency', 'breach')),
    steps       jsonb NOT NULL,                           -- [{"target": ..., "wait_after_minutes": n}]
    UNIQUE NULLS NOT DISTINCT (project_id, alert_kind)
);

CREATE TABLE elevators (
    id               serial PRIMARY KEY,
    project_id       integer NOT NULL REFERENCES projects(id),
    code             text NOT NULL UNIQUE,
    building_id      integer REFERENCES buildings(id),
    name             text NOT NULL,
    contractor_name  text NOT NULL DEFAULT '',
    contractor_phone text NOT NULL DEFAULT '',
    contractor_webhook text NOT NULL DEFAULT ''
);
ALTER TABLE orders ADD FOREIGN KEY (elevator_id) REFERENCES elevators(id);

CREATE TABLE iot_events (
    id           bigserial PRIMARY KEY,
    elevator_id  integer NOT NULL REFERENCES elevators(id),
    event        text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    order_id     bigint REFERENCES orders(id),
    UNIQUE (elevator_id, event, occurred_at)            -- a box repeating itself is ignored
);

CREATE TABLE alerts (
    id               bigserial PRIMARY KEY,
    project_id       integer NOT NULL REFERENCES projects(id),
    order_id         bigint REFERENCES orders(id),
    kind             text NOT NULL CHECK (kind IN ('entrapment', 'emergency', 'breach')),
    state            text NOT NULL CHECK (state IN ('triggered', 'acknowledged', 'resolved')),
    title            text NOT NULL,
    chain            jsonb NOT NULL,             -- frozen at start: steps with concrete recipients
    step_token       text NOT NULL,              -- only the job carrying this token may step
    next_step_index  integer NOT NULL DEFAULT 0,
    next_step_at     timestamptz,
    started_at       timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  integer REFERENCES staff(id),
    resolved_at      timestamptz,
    resolved_by      integer REFERENCES staff(id),
    stuck_since      timestamptz,                -- set by the auditor when a step is overdue
    version          integer NOT NULL DEFAULT 1
);
-- At most one open alert per order and kind.
CREATE UNIQUE INDEX alerts_one_open ON alerts (order_id, kind) WHERE state <> 'resolved';
CREATE INDEX alerts_open_next ON alerts (next_step_at) WHERE state = 'triggered';
CREATE INDEX alerts_project_open ON alerts (project_id) WHERE state <> 'resolved';

CREATE TABLE alert_events (
    id        bigserial PRIMARY KEY,
    alert_id  bigint NOT NULL REFERENCES alerts(id),
    at        timestamptz NOT NULL,
    actor_id  integer REFERENCES staff(id),
    action    text NOT NULL,              -- started, step, acknowledged, resolved, reminder, stuck
    details   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);
CREATE TRIGGER alert_events_append_only BEFORE UPDATE OR DELETE ON alert_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

CREATE TRIGGER alerts_notify_board AFTER INSERT OR UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION notify_board();

ALTER TABLE outbox ADD COLUMN alert_id bigint REFERENCES alerts(id);
CREATE INDEX outbox_alert ON outbox (alert_id) WHERE alert_id IS NOT NULL;
