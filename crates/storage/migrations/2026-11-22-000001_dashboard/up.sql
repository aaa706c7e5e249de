-- Dashboards and admin writes (issue 5).

-- Joins in a time range (leaderboards over 7 or 30 days, the guild summary).
CREATE INDEX joins_by_time ON joins (bot_id, guild_id, created_at);

-- Soft resets (`/resetinvites`): one row per reset, restorable.
CREATE TABLE resets (
    id BIGSERIAL PRIMARY KEY,
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    -- NULL: the whole guild.
    inviter_id BIGINT,
    reason TEXT NOT NULL DEFAULT '',
    author TEXT NOT NULL,
    key_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    joins_cleared BIGINT NOT NULL DEFAULT 0,
    bonus_cleared BIGINT NOT NULL DEFAULT 0,
    restored_at TIMESTAMPTZ
);
CREATE INDEX resets_by_guild ON resets (bot_id, guild_id, id);

-- The joins a reset cleared; restoring the reset clears their flag again.
CREATE TABLE reset_joins (
    reset_id BIGINT NOT NULL REFERENCES resets (id),
    join_id BIGINT NOT NULL REFERENCES joins (id),
    PRIMARY KEY (reset_id, join_id)
);

-- Bonus invites, added (amount > 0) or removed (amount < 0) by admins; kept as rows, summed
-- into inviter_counts.bonus in the same transaction.
CREATE TABLE bonus_invites (
    id BIGSERIAL PRIMARY KEY,
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    inviter_id BIGINT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount <> 0),
    reason TEXT NOT NULL DEFAULT '',
    author TEXT NOT NULL,
    key_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    cleared BOOLEAN NOT NULL DEFAULT FALSE,
    cleared_by BIGINT REFERENCES resets (id)
);
CREATE INDEX bonus_by_inviter ON bonus_invites (bot_id, guild_id, inviter_id, id);
CREATE INDEX bonus_by_time ON bonus_invites (bot_id, guild_id, created_at);
CREATE INDEX bonus_by_reset ON bonus_invites (cleared_by) WHERE cleared_by IS NOT NULL;

-- Every admin write: who (key and author), when, what.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    key_id BIGINT NOT NULL,
    key_label TEXT NOT NULL,
    author TEXT NOT NULL,
    action TEXT NOT NULL,
    details JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_by_guild ON audit_log (bot_id, guild_id, id);
