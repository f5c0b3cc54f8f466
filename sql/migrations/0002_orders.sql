-- Work orders, their append-only history, clocks, breaches, the outbox and catalogs.

CREATE TABLE catalog_items (
    id          serial PRIMARY KEY,
    project_id  integer REFERENCES projects(id),          -- NULL: every project
    category    text NOT NULL,
    code        text NOT NULL UNIQUE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    minutes     integer NOT NULL CHECK (minutes > 0),     -- the item's own time limit
    price_fen   integer NOT NULL CHECK (price_fen >= 0),  -- 明码标价; 0 = 面议/按材料
    price_note  text NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true
);

CREATE TABLE suppliers (
    id       serial PRIMARY KEY,
    name     text NOT NULL UNIQUE,
    service  text NOT NULL,
    contact  text NOT NULL DEFAULT '',
    phone    text NOT NULL DEFAULT '',
    active   boolean NOT NULL DEFAULT true
);

CREATE TABLE sla_rules (
    id               serial PRIMARY KEY,
    project_id       integer REFERENCES projects(id),
    kind             text,
    category         text,
    urgency          text,
    catalog_item_id  integer REFERENCES catalog_items(id),
    clock            text NOT NULL,
    minutes          integer NOT NULL CHECK (minutes > 0),
    business_hours   boolean NOT NULL DEFAULT false,
    priority         integer NOT NULL DEFAULT 0,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       integer REFERENCES staff(id)
);
-- Two live rules for the same scope and clock need different priorities.
CREATE UNIQUE INDEX sla_rules_scope ON sla_rules (
    coalesce(project_id, 0), coalesce(kind, ''), coalesce(category, ''), coalesce(urgency, ''),
    coalesce(catalog_item_id, 0), clock, priority) WHERE active;

-- Race-free readable numbers: one counter row per prefix and day.
CREATE TABLE order_counters (
    prefix  text NOT NULL,
    day     date NOT NULL,
    last    integer NOT NULL,
    PRIMARY KEY (prefix, day)
);

CREATE TABLE orders (
    id                     bigserial PRIMARY KEY,
    number                 text NOT NULL UNIQUE,
    project_id             integer NOT NULL REFERENCES projects(id),
    kind                   text NOT NULL CHECK (kind IN ('repair', 'matter', 'entrapment')),
    category               text NOT NULL,
    urgency                text NOT NULL CHECK (urgency IN ('emergency', 'normal', 'low')),
    status                 text NOT NULL CHECK (status IN ('new', 'pooled', 'assigned', 'accepted', 'on_site',
                                'paused', 'unfinished', 'done', 'callback', 'closed', 'cancelled')),
    version                integer NOT NULL DEFAULT 1,
    area                   text NOT NULL CHECK (area IN ('private', 'public')),
    room_id                integer REFERENCES rooms(id),
    public_area_id         integer REFERENCES public_areas(id),
    location               text NOT NULL,           -- rendered once: "1栋-1单元-101" or the area name
    reporter_name          text NOT NULL CHECK (length(reporter_name) BETWEEN 1 AND 40),
    reporter_phone         text NOT NULL CHECK (reporter_phone ~ '^[0-9]{5,20}$'),
    summary                text NOT NULL CHECK (length(summary) BETWEEN 1 AND 100),
    content                text NOT NULL DEFAULT '' CHECK (length(content) <= 2000),
    channel                text NOT NULL,
    appointment_at         timestamptz,
    catalog_item_id        integer REFERENCES catalog_items(id),
    supplier_id            integer REFERENCES suppliers(id),
    designated_engineer_id integer REFERENCES staff(id),
    team_id                integer REFERENCES teams(id),
    department_code        text REFERENCES departments(code),
    assignee_id            integer REFERENCES staff(id),
    received_by            integer REFERENCES staff(id),
    received_at            timestamptz NOT NULL,
    dispatched_at          timestamptz,
    accepted_at            timestamptz,
    arrived_at             timestamptz,
    finished_at            timestamptz,
    closed_at              timestamptz,
    cancelled_at           timestamptz,
    verification_code      text NOT NULL CHECK (verification_code ~ '^[0-9]{4,6}$'),
    paused_from            text,
    pause_reason           text,
    promised_at            timestamptz,
    result                 text,
    unfinished_reason      text,
    next_at                timestamptz,
    man_hours              numeric(6, 2),
    catalog_fee_fen        integer NOT NULL DEFAULT 0 CHECK (catalog_fee_fen >= 0),
    labour_fen             integer NOT NULL DEFAULT 0 CHECK (labour_fen >= 0),
    material_fen           integer NOT NULL DEFAULT 0 CHECK (material_fen >= 0),
    total_fen              integer NOT NULL DEFAULT 0 CHECK (total_fen >= 0),
    agreement_recorded     boolean NOT NULL DEFAULT false,
    prepaid                boolean NOT NULL DEFAULT false,
    paid                   boolean NOT NULL DEFAULT false,
    callback_method        text,
    callback_rating        text,
    callback_comment       text,
    callback_by            integer REFERENCES staff(id),
    callback_at            timestamptz,
    reopen_count           integer NOT NULL DEFAULT 0,
    reopened_from_id       bigint REFERENCES orders(id),
    parent_order_id        bigint REFERENCES orders(id),   -- 报事 that spawned this repair
    slip_returned_at       timestamptz,                    -- paper slip back at the desk
    next_deadline          timestamptz,                    -- earliest running clock; NULL when none
    next_clock             text,
    elevator_id            integer,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((area = 'private') = (room_id IS NOT NULL) OR kind = 'entrapment' OR kind = 'matter')
);
-- The board and the jobs read only open orders, by deadline.
CREATE INDEX orders_open_deadline ON orders (next_deadline)
    WHERE status NOT IN ('closed', 'cancelled') AND next_deadline IS NOT NULL;
CREATE INDEX orders_open_project ON orders (project_id, next_deadline)
    WHERE status NOT IN ('closed', 'cancelled');
CREATE INDEX orders_assignee_open ON orders (assignee_id) WHERE status NOT IN ('closed', 'cancelled');
CREATE INDEX orders_project_received ON orders (project_id, received_at);
CREATE INDEX orders_updated ON orders (updated_at);
CREATE INDEX orders_reporter_phone ON orders (reporter_phone);

CREATE TABLE order_events (
    id           bigserial PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES orders(id),
    at           timestamptz NOT NULL,
    actor_id     integer REFERENCES staff(id),
    actor_label  text NOT NULL,                -- "王师傅", "系统", "电梯监测 E-01"
    action       text NOT NULL,
    from_status  text,
    to_status    text,
    reason       text,
    inputs       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX order_events_order ON order_events (order_id, id);
CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

CREATE TABLE order_materials (
    id              bigserial PRIMARY KEY,
    order_id        bigint NOT NULL REFERENCES orders(id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    quantity        numeric(10, 2) NOT NULL CHECK (quantity > 0),
    unit            text NOT NULL DEFAULT '',
    unit_price_fen  integer NOT NULL CHECK (unit_price_fen >= 0),
    provided_by     text NOT NULL CHECK (provided_by IN ('center', 'customer')),
    verified        boolean,                  -- customer-provided: 合格 true / 不合格 false
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_materials_order ON order_materials (order_id);

-- One row per clock per run of the order (a reopened order starts new generations).
CREATE TABLE order_clocks (
    id              bigserial PRIMARY KEY,
    order_id        bigint NOT NULL REFERENCES orders(id),
    kind            text NOT NULL,
    generation      integer NOT NULL DEFAULT 1,
    started_at      timestamptz NOT NULL,
    deadline        timestamptz NOT NULL,
    minutes         integer NOT NULL,
    business_hours  boolean NOT NULL DEFAULT false,
    paused_at       timestamptz,
    paused_seconds  integer NOT NULL DEFAULT 0,
    state           text NOT NULL CHECK (state IN ('running', 'paused', 'met', 'breached', 'cancelled')),
    -- set once when the breach is recorded; the clock keeps running (the board shows how
    -- long overdue) until the step it waits for happens
    breached_at     timestamptz,
    ended_at        timestamptz,
    rule_id         integer REFERENCES sla_rules(id),
    UNIQUE (order_id, kind, generation)
);
-- The breach jobs read only running clocks whose breach is not yet recorded, by deadline.
CREATE INDEX order_clocks_due ON order_clocks (deadline) WHERE state = 'running' AND breached_at IS NULL;
CREATE INDEX order_clocks_order ON order_clocks (order_id);

CREATE TABLE breaches (
    id           bigserial PRIMARY KEY,
    clock_id     bigint NOT NULL UNIQUE REFERENCES order_clocks(id),   -- exactly once per clock
    order_id     bigint NOT NULL REFERENCES orders(id),
    clock_kind   text NOT NULL,
    deadline     timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    recorded_by  text NOT NULL             -- 'scheduled' | 'sweep'
);
CREATE INDEX breaches_order ON breaches (order_id);
CREATE INDEX breaches_recorded ON breaches (recorded_at);

-- Outbox: written in the transaction of the change; delivered with retries; dedupe by key.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    dedupe_key     text NOT NULL UNIQUE,
    topic          text NOT NULL,           -- 'notify', 'sms', 'webhook', ...
    project_id     integer REFERENCES projects(id),
    order_id       bigint REFERENCES orders(id),
    recipient_id   integer REFERENCES staff(id),
    channel        text NOT NULL DEFAULT 'screen',
    payload        jsonb NOT NULL DEFAULT '{}',
    state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts       integer NOT NULL DEFAULT 0,
    available_at   timestamptz NOT NULL DEFAULT now(),
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz
);
CREATE INDEX outbox_pending ON outbox (available_at) WHERE state = 'pending';
CREATE INDEX outbox_recipient ON outbox (recipient_id, created_at);

-- Test clock: an offset every process adds to its wall clock (only honoured when enabled).
CREATE TABLE app_clock (
    id              integer PRIMARY KEY CHECK (id = 1),
    offset_seconds  double precision NOT NULL DEFAULT 0
);
INSERT INTO app_clock (id, offset_seconds) VALUES (1, 0);

-- Board change notifications: one NOTIFY per statement, the payload is the project id.
CREATE FUNCTION notify_board() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('board', OLD.project_id::text);
    ELSE
        PERFORM pg_notify('board', NEW.project_id::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER orders_notify_board AFTER INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION notify_board();
