-- Every invite the worker has seen of a guild: from snapshots (GET /guilds/{id}/invites),
-- INVITE_CREATE and INVITE_DELETE, written in the same transaction as the joins they explain.
-- Dashboards read it; nothing reads the engine's saved state but the engine.
CREATE TABLE invites (
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    code TEXT NOT NULL,
    channel_id BIGINT,
    inviter_id BIGINT,
    uses BIGINT NOT NULL,
    -- 0 = unlimited.
    max_uses BIGINT NOT NULL,
    -- 0 = never expires.
    max_age_secs INTEGER NOT NULL,
    temporary BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    -- When the latest snapshot or event about it was observed.
    updated_at TIMESTAMPTZ NOT NULL,
    -- When it stopped being one of the guild's invites, and how we know.
    vanished_at TIMESTAMPTZ,
    vanished_reason TEXT CHECK (vanished_reason IN ('deleted', 'expired', 'missing')),
    PRIMARY KEY (bot_id, guild_id, code),
    CHECK ((vanished_at IS NULL) = (vanished_reason IS NULL))
);

CREATE INDEX invites_by_inviter ON invites (bot_id, guild_id, inviter_id);
