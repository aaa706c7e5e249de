-- A guild's joins in id order: the dashboard's feed (newest first, by inviter too) and the
-- exports (oldest first) read them a page at a time after an id, without sorting the guild.
CREATE INDEX joins_in_order ON joins (bot_id, guild_id, id);
DROP INDEX joins_by_inviter;
CREATE INDEX joins_by_inviter ON joins (bot_id, guild_id, inviter_id, id);
