-- Discord's reported join source (docs/attribution.md#discords-reported-source), per join: what
-- the member search said, whether it contradicts the counters, and which evidence decided the
-- join row. A join without a row here was decided by the counters alone.
CREATE TABLE join_evidence (
  join_id BIGINT PRIMARY KEY REFERENCES joins (id) ON DELETE CASCADE,
  decided_by TEXT NOT NULL,
  discord_source TEXT NOT NULL,
  discord_code TEXT,
  discord_inviter_id BIGINT,
  disagrees BOOLEAN NOT NULL,
  reported_at TIMESTAMPTZ NOT NULL
);

-- Per guild: how the member search answered, for the guild's tracking health.
CREATE TABLE join_source_health (
  bot_id BIGINT NOT NULL,
  guild_id BIGINT NOT NULL,
  reports BIGINT NOT NULL DEFAULT 0,
  credited BIGINT NOT NULL DEFAULT 0,
  confirmed BIGINT NOT NULL DEFAULT 0,
  disagreements BIGINT NOT NULL DEFAULT 0,
  -- The last refusal (HTTP status and Discord's message) that switched the search off for the
  -- guild, until a later answer succeeds.
  refused_status INTEGER,
  refused_detail TEXT,
  refused_at TIMESTAMPTZ,
  updated_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (bot_id, guild_id)
);
