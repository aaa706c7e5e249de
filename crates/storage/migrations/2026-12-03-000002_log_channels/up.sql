-- Where the bot posts a guild's join and leave messages (NULL = nowhere), and the guild's own
-- templates by message kind (invitrack-messages' `Templates`; kinds left out use the defaults).
ALTER TABLE guild_settings
    ADD COLUMN join_log_channel_id BIGINT,
    ADD COLUMN leave_log_channel_id BIGINT,
    ADD COLUMN templates JSONB NOT NULL DEFAULT '{}';
