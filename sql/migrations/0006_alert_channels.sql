-- Alerts (issue 6): per-project group channels, the reminder stamp, and the
-- bookkeeping that puts every delivery outcome into the order's timeline exactly once.

-- Group channels an alert step also goes to (besides screen and SMS to each person paged):
-- a WeCom (企业微信) group robot, a generic webhook.
CREATE TABLE alert_channels (
    id          serial PRIMARY KEY,
    project_id  integer NOT NULL REFERENCES projects(id),
    channel     text NOT NULL CHECK (channel IN ('wecom', 'webhook')),
    url         text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 500),
    name        text NOT NULL DEFAULT '' CHECK (length(name) <= 40),
    active      boolean NOT NULL DEFAULT true,
    UNIQUE (project_id, channel, url)
);

-- Acknowledged but not resolved in time: the reminder is sent once.
ALTER TABLE alerts ADD COLUMN reminded_at timestamptz;
CREATE INDEX alerts_acknowledged_open ON alerts (acknowledged_at) WHERE state = 'acknowledged' AND reminded_at IS NULL;

-- A delivery's outcome (sent / failed) written to the order timeline: claimed once by this stamp.
ALTER TABLE outbox ADD COLUMN logged_at timestamptz;
CREATE INDEX outbox_alert_unlogged ON outbox (id) WHERE alert_id IS NOT NULL AND state <> 'pending' AND logged_at IS NULL;
