-- Alerts, second round (issue 6): the frozen chain's shape, configurable chains with their
-- reminder threshold, per-alert reminder time, elevator contractors of their own, SMS gateways.

-- alerts.chain is always the frozen snapshot {"steps": [...], ...}; readers rely on that shape.
UPDATE alerts SET chain = jsonb_build_object('steps', chain) WHERE jsonb_typeof(chain) = 'array';
UPDATE alerts SET chain = chain || '{"steps": []}'::jsonb
 WHERE jsonb_typeof(chain) = 'object' AND jsonb_typeof(chain -> 'steps') IS DISTINCT FROM 'array';
ALTER TABLE alerts ADD CONSTRAINT alerts_chain_shape
    CHECK (jsonb_typeof(chain) = 'object' AND jsonb_typeof(chain -> 'steps') = 'array');

-- Configured chains: the steps are validated by the application (server/domain/escalation.py);
-- a row that does not validate is ignored in favour of the default chain (and logged).
ALTER TABLE escalation_chains
    ADD COLUMN remind_after_minutes integer NOT NULL DEFAULT 30 CHECK (remind_after_minutes BETWEEN 1 AND 1440),
    ADD CONSTRAINT escalation_chains_steps_array CHECK (jsonb_typeof(steps) = 'array');

-- Acknowledged but not resolved by remind_at (set on acknowledgement from the frozen chain's
-- threshold): the reminder job sends one reminder.
ALTER TABLE alerts ADD COLUMN remind_at timestamptz;
UPDATE alerts SET remind_at = acknowledged_at + interval '30 minutes' WHERE state = 'acknowledged';
DROP INDEX IF EXISTS alerts_acknowledged_open;
CREATE INDEX alerts_remind_due ON alerts (remind_at) WHERE state = 'acknowledged' AND reminded_at IS NULL;

-- Elevator maintenance contractors (维保单位) of a project: one row, many elevators.
CREATE TABLE elevator_contractors (
    id          serial PRIMARY KEY,
    project_id  integer NOT NULL REFERENCES projects(id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    phone       text NOT NULL DEFAULT '' CHECK (length(phone) <= 20),
    webhook     text NOT NULL DEFAULT '' CHECK (webhook = '' OR (webhook ~ '^https?://' AND length(webhook) <= 500)),
    active      boolean NOT NULL DEFAULT true,
    UNIQUE (project_id, name)
);
INSERT INTO elevator_contractors (project_id, name, phone, webhook)
SELECT DISTINCT ON (project_id, coalesce(nullif(contractor_name, ''), '维保单位'))
       project_id, coalesce(nullif(contractor_name, ''), '维保单位'), contractor_phone, contractor_webhook
FROM elevators
WHERE contractor_name <> '' OR contractor_phone <> '' OR contractor_webhook <> ''
ORDER BY project_id, coalesce(nullif(contractor_name, ''), '维保单位'), id;
ALTER TABLE elevators
    ADD COLUMN contractor_id integer REFERENCES elevator_contractors(id),
    ADD COLUMN active boolean NOT NULL DEFAULT true;
UPDATE elevators e SET contractor_id = c.id FROM elevator_contractors c
 WHERE c.project_id = e.project_id AND c.name = coalesce(nullif(e.contractor_name, ''), '维保单位')
   AND (e.contractor_name <> '' OR e.contractor_phone <> '' OR e.contractor_webhook <> '');
ALTER TABLE elevators DROP COLUMN contractor_name, DROP COLUMN contractor_phone, DROP COLUMN contractor_webhook;
ALTER TABLE elevators ADD CONSTRAINT elevators_name_length CHECK (length(name) BETWEEN 1 AND 40);
CREATE INDEX elevators_project ON elevators (project_id);

-- Channels of a project: group channels every step also posts to (a WeCom group robot, a
-- generic webhook) and the project's SMS gateway adapter (one active at most; none: the
-- process-wide SMS_WEBHOOK_URL, else SMS are logged). `token` is sent as a bearer header.
ALTER TABLE alert_channels DROP CONSTRAINT alert_channels_channel_check;
ALTER TABLE alert_channels
    ADD CONSTRAINT alert_channels_channel_check CHECK (channel IN ('wecom', 'webhook', 'sms')),
    ADD COLUMN token text NOT NULL DEFAULT '' CHECK (length(token) <= 200);
CREATE UNIQUE INDEX alert_channels_one_sms ON alert_channels (project_id) WHERE channel = 'sms' AND active;
