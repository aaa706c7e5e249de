DROP INDEX joins_by_inviter;
CREATE INDEX joins_by_inviter ON joins (bot_id, guild_id, inviter_id);
DROP INDEX joins_in_order;
