ALTER TABLE guild_settings DROP COLUMN invite_channel_id;
DROP TABLE member_invites;
