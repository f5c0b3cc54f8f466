-- Foundation: projects and their places, departments, teams, staff, tokens.
-- Timestamps are timestamptz (UTC on the wire); local times of day are `time` in the
-- project's own zone.

CREATE TABLE projects (
    id            serial PRIMARY KEY,
    code          text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9_-]{2,20}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    tz            text NOT NULL DEFAULT 'Asia/Shanghai',
    desk_opens    time NOT NULL DEFAULT '09:00',
    desk_closes   time NOT NULL DEFAULT '17:30',
    -- "HH:MM-HH:MM" on working days for non-urgent clocks; NULL = calendar time
    business_hours text CHECK (business_hours IS NULL OR business_hours ~ '^\d\d:\d\d-\d\d:\d\d$'),
    dispatch_mode text NOT NULL DEFAULT 'grab' CHECK (dispatch_mode IN ('grab', 'assign')),
    count_fairly_satisfied boolean NOT NULL DEFAULT true,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE buildings (
    id          serial PRIMARY KEY,
    project_id  integer NOT NULL REFERENCES projects(id),
    code        text NOT NULL CHECK (length(code) BETWEEN 1 AND 20),
    name        text NOT NULL,
    UNIQUE (project_id, code)
);

CREATE TABLE rooms (
    id           serial PRIMARY KEY,
    building_id  integer NOT NULL REFERENCES buildings(id),
    unit         text NOT NULL CHECK (length(unit) BETWEEN 1 AND 20),
    number       text NOT NULL CHECK (length(number) BETWEEN 1 AND 20),
    owner_name   text,
    owner_phone  text,
    UNIQUE (building_id, unit, number)
);
CREATE INDEX rooms_owner_phone ON rooms (owner_phone) WHERE owner_phone IS NOT NULL;

CREATE TABLE public_areas (
    id          serial PRIMARY KEY,
    project_id  integer NOT NULL REFERENCES projects(id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    UNIQUE (project_id, name)
);

CREATE TABLE departments (
    code  text PRIMARY KEY,
    name  text NOT NULL
);
INSERT INTO departments (code, name) VALUES
    ('engineering', '工程部'), ('order', '秩序部'), ('customer_service', '客服部'),
    ('cleaning', '保洁'), ('greening', '绿化');

CREATE TABLE teams (
    id               serial PRIMARY KEY,
    project_id       integer NOT NULL REFERENCES projects(id),
    department_code  text NOT NULL REFERENCES departments(code),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    lead_id          integer,
    saturated_on     date,          -- 工作量已饱和: the day the lead marked it
    UNIQUE (project_id, name)
);

CREATE TABLE staff (
    id               serial PRIMARY KEY,
    username         text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9_.-]{2,40}$'),
    display_name     text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 40),
    phone            text,
    role             text NOT NULL CHECK (role IN ('dispatcher', 'monitor', 'supervisor', 'engineer',
                                                    'handler', 'manager', 'finance', 'admin')),
    department_code  text REFERENCES departments(code),
    password_hash    text NOT NULL,
    pin_hash         text,
    locale           text NOT NULL DEFAULT 'zh_CN' CHECK (locale IN ('zh_CN', 'en')),
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE teams ADD FOREIGN KEY (lead_id) REFERENCES staff(id);

CREATE TABLE staff_projects (
    staff_id    integer NOT NULL REFERENCES staff(id),
    project_id  integer NOT NULL REFERENCES projects(id),
    PRIMARY KEY (staff_id, project_id)
);

CREATE TABLE staff_teams (
    staff_id  integer NOT NULL REFERENCES staff(id),
    team_id   integer NOT NULL REFERENCES teams(id),
    PRIMARY KEY (staff_id, team_id)
);

CREATE TABLE api_tokens (
    id            serial PRIMARY KEY,
    staff_id      integer NOT NULL REFERENCES staff(id),
    name          text NOT NULL DEFAULT '',
    token_hash    text NOT NULL UNIQUE,     -- sha256 of the token; the token itself is shown once
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

CREATE TABLE kiosk_tokens (
    id          serial PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    token_hash  text NOT NULL UNIQUE,
    created_by  integer REFERENCES staff(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE kiosk_token_projects (
    kiosk_id    integer NOT NULL REFERENCES kiosk_tokens(id),
    project_id  integer NOT NULL REFERENCES projects(id),
    PRIMARY KEY (kiosk_id, project_id)
);

-- Audit of administrative changes (staff, teams, tokens, policy): append-only.
CREATE TABLE admin_events (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor_id  integer REFERENCES staff(id),
    subject   text NOT NULL,
    action    text NOT NULL,
    details   jsonb NOT NULL DEFAULT '{}'
);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;

CREATE TRIGGER admin_events_append_only BEFORE UPDATE OR DELETE ON admin_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
