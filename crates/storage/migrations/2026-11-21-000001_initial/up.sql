-- Discord snowflakes are stored as BIGINT (bit-preserving casts of u64).

-- One row per decided join. Counted as docs/counting.md defines.
CREATE TABLE joins (
    id BIGSERIAL PRIMARY KEY,
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    member_id BIGINT NOT NULL,
    -- Discord's joined_at.
    created_at TIMESTAMPTZ NOT NULL,
    -- Last change: leave, clear.
    updated_at TIMESTAMPTZ NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('invite', 'vanity', 'ambiguous', 'unknown')),
    invite_code TEXT,
    inviter_id BIGINT,
    -- Codes that could explain an ambiguous join.
    candidates TEXT[] NOT NULL DEFAULT '{}',
    unknown_reason TEXT,
    -- Fake reasons bitfield: YOUNG=1, SELF=2, NO_AVATAR=4, ALREADY_JOINED=8.
    fake INTEGER NOT NULL DEFAULT 0,
    has_left BOOLEAN NOT NULL DEFAULT FALSE,
    left_at TIMESTAMPTZ,
    cleared BOOLEAN NOT NULL DEFAULT FALSE,
    decided_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (bot_id, guild_id, member_id, created_at)
);
CREATE INDEX joins_by_inviter ON joins (bot_id, guild_id, inviter_id);
CREATE INDEX joins_by_code ON joins (bot_id, guild_id, invite_code);

-- Members as the gateway showed them: makes repeated GUILD_MEMBER_ADD a no-op, knows rejoins,
-- and remembers leaves that happen before the join is decided.
CREATE TABLE members (
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    member_id BIGINT NOT NULL,
    present BOOLEAN NOT NULL,
    joined_at TIMESTAMPTZ NOT NULL,
    left_at TIMESTAMPTZ,
    has_avatar BOOLEAN NOT NULL,
    -- The current membership is not the first one.
    rejoined BOOLEAN NOT NULL,
    join_count INTEGER NOT NULL,
    PRIMARY KEY (bot_id, guild_id, member_id)
);

-- Per-inviter counters, updated in the same transaction as the joins they count, so reads are
-- O(1). total = joins + bonus, real = total - fake - leaves.
CREATE TABLE inviter_counts (
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    inviter_id BIGINT NOT NULL,
    joins BIGINT NOT NULL DEFAULT 0,
    fake BIGINT NOT NULL DEFAULT 0,
    leaves BIGINT NOT NULL DEFAULT 0,
    bonus BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (bot_id, guild_id, inviter_id)
);

-- The attribution engine's state per guild, saved with the decisions it produced.
CREATE TABLE guild_states (
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    state JSONB NOT NULL,
    pending_joins INTEGER NOT NULL DEFAULT 0,
    missing_permissions BOOLEAN NOT NULL DEFAULT FALSE,
    last_snapshot_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, guild_id)
);

CREATE TABLE guild_settings (
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    fake_reasons INTEGER NOT NULL DEFAULT 11,
    young_account_days INTEGER NOT NULL DEFAULT 7,
    PRIMARY KEY (bot_id, guild_id)
);

-- The last stream sequence applied per partition, committed with the effects it covers.
-- `epoch` grows each time a worker claims the partition; commits carry the claimer's epoch, so a
-- worker that lost the partition can never commit for it again.
CREATE TABLE partition_progress (
    stream TEXT NOT NULL,
    partition INTEGER NOT NULL,
    last_sequence BIGINT NOT NULL,
    epoch BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, partition)
);

-- Bearer keys for the API. Only a SHA-256 of the token is stored.
CREATE TABLE api_keys (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    bot_id BIGINT NOT NULL,
    guild_id BIGINT,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
    label TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
