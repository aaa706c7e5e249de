DROP TABLE api_keys;
DROP TABLE partition_progress;
DROP TABLE guild_settings;
DROP TABLE guild_states;
DROP TABLE inviter_counts;
DROP TABLE members;
DROP TABLE joins;
