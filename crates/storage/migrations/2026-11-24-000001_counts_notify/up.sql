-- Tell API processes which guilds' inviter counters changed, so they can cache counts safely
-- (issue 5). NOTIFY is transactional: listeners get it when, and only if, the change commits.
-- One statement-level trigger per event (a trigger with a transition table has one event); each
-- sends the distinct `bot_id:guild_id` pairs of the statement's rows, comma-separated, at most
-- 150 per notification (payloads must stay under 8000 bytes). TRUNCATE sends `*` (everything).
CREATE FUNCTION invitrack_notify_inviter_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload TEXT;
BEGIN
    FOR payload IN
        SELECT string_agg(guild, ',')
        FROM (SELECT guild, (row_number() OVER ()) / 150 AS chunk
              FROM (SELECT DISTINCT bot_id::TEXT || ':' || guild_id::TEXT AS guild
                    FROM changed_counts) AS guilds) AS numbered
        GROUP BY chunk
    LOOP
        PERFORM pg_notify('invitrack_inviter_counts', payload);
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION invitrack_notify_inviter_counts_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('invitrack_inviter_counts', '*');
    RETURN NULL;
END $$;

CREATE TRIGGER inviter_counts_notify_insert AFTER INSERT ON inviter_counts
    REFERENCING NEW TABLE AS changed_counts
    FOR EACH STATEMENT EXECUTE FUNCTION invitrack_notify_inviter_counts();
CREATE TRIGGER inviter_counts_notify_update AFTER UPDATE ON inviter_counts
    REFERENCING NEW TABLE AS changed_counts
    FOR EACH STATEMENT EXECUTE FUNCTION invitrack_notify_inviter_counts();
CREATE TRIGGER inviter_counts_notify_delete AFTER DELETE ON inviter_counts
    REFERENCING OLD TABLE AS changed_counts
    FOR EACH STATEMENT EXECUTE FUNCTION invitrack_notify_inviter_counts();
CREATE TRIGGER inviter_counts_notify_truncate AFTER TRUNCATE ON inviter_counts
    FOR EACH STATEMENT EXECUTE FUNCTION invitrack_notify_inviter_counts_truncate();
