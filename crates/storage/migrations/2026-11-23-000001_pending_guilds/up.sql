-- A worker that claims a partition reloads the guilds with undecided joins, so they are
-- decided on time even if no further event of theirs arrives.
CREATE INDEX guild_states_pending ON guild_states (bot_id, guild_id) WHERE pending_joins > 0;
