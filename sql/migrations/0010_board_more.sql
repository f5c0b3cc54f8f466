-- The wall board hears of every change it shows (NOTIFY 'board', payload: the project id, or
-- '*' for every project). Orders and alerts notify since 0002/0003; here the rest of what a
-- card, the header or the footer shows: clocks, the on-call rota, staff names, project
-- settings, department names. Identical payloads within one transaction reach a listener
-- once (PostgreSQL folds them), so a bulk statement costs one notification per project.

-- A row that names its project (oncall_shifts): both projects when it moves between them.
CREATE FUNCTION notify_board_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('board', OLD.project_id::text);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('board', NEW.project_id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER oncall_shifts_notify_board AFTER INSERT OR UPDATE OR DELETE ON oncall_shifts
    FOR EACH ROW EXECUTE FUNCTION notify_board_row();

-- Project settings: name, time zone, business hours, desk hours (the footer's shift windows).
CREATE FUNCTION notify_board_project() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('board', NEW.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER projects_notify_board AFTER UPDATE ON projects
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION notify_board_project();

-- A staff member's name stands on cards (assignee) and in the header (on call): every
-- project they serve.
CREATE FUNCTION notify_board_staff() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pid integer;
BEGIN
    FOR pid IN SELECT project_id FROM staff_projects WHERE staff_id = NEW.id LOOP
        PERFORM pg_notify('board', pid::text);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER staff_notify_board AFTER UPDATE OF display_name, active ON staff
    FOR EACH ROW WHEN (OLD.display_name IS DISTINCT FROM NEW.display_name OR OLD.active IS DISTINCT FROM NEW.active)
    EXECUTE FUNCTION notify_board_staff();

-- A department's name stands on the cards it handles, in every project.
CREATE FUNCTION notify_board_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('board', '*');
    RETURN NULL;
END $$;

CREATE TRIGGER departments_notify_board AFTER INSERT OR UPDATE OR DELETE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION notify_board_all();

-- Clocks drive the colours. Most clock writes come with an order update (which notifies),
-- not all (a deadline moved by a policy change): once per statement and project.
CREATE FUNCTION notify_board_clocks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pid integer;
BEGIN
    FOR pid IN SELECT DISTINCT o.project_id FROM changed_clocks c JOIN orders o ON o.id = c.order_id LOOP
        PERFORM pg_notify('board', pid::text);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER order_clocks_insert_notify_board AFTER INSERT ON order_clocks
    REFERENCING NEW TABLE AS changed_clocks FOR EACH STATEMENT EXECUTE FUNCTION notify_board_clocks();
CREATE TRIGGER order_clocks_update_notify_board AFTER UPDATE ON order_clocks
    REFERENCING NEW TABLE AS changed_clocks FOR EACH STATEMENT EXECUTE FUNCTION notify_board_clocks();
