DROP INDEX guild_states_pending;
