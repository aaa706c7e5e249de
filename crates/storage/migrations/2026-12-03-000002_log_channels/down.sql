ALTER TABLE guild_settings
    DROP COLUMN join_log_channel_id,
    DROP COLUMN leave_log_channel_id,
    DROP COLUMN templates;
