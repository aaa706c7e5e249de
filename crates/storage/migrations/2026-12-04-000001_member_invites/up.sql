-- `/invite link`: invites the bot created for members who asked. Discord names the bot as their
-- inviter; each is credited to the member it was made for (`docs/commands.md#invite-link`).
CREATE TABLE member_invites (
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    code TEXT NOT NULL,
    member_id BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, guild_id, code)
);

CREATE INDEX member_invites_by_member ON member_invites (bot_id, guild_id, member_id, created_at);

-- Where `/invite link` creates members' invites (NULL = the command is off).
ALTER TABLE guild_settings ADD COLUMN invite_channel_id BIGINT;
