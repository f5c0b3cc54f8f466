-- Orders unfinished over 24 h at :as_of (oldest first, at most :lim), with the total before the
-- limit; the order's number, place and promise read for those shown only.
SELECT o.number, u.received_at, o.status, o.category, o.location, o.promised_at,
       coalesce(tm.name, '') AS team_name,
       coalesce(st.display_name, '') AS engineer_name,
       extract(epoch FROM CAST(:as_of AS timestamptz) - u.received_at) AS age_seconds,
       u.total
FROM (
    SELECT u.*, count(*) OVER () AS total
    FROM unfinished_24h u
    ORDER BY u.received_at, u.id
    LIMIT :lim
) u
JOIN orders o ON o.id = u.id
LEFT JOIN teams tm ON tm.id = u.team_id
LEFT JOIN staff st ON st.id = u.assignee_id
ORDER BY u.received_at, u.id
