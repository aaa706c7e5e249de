-- Decisions waiting to leave, and those that left: the worker records each decision (a join
-- decided, a member who left) in the transaction that applies it; a relay publishes the
-- unsent ones of a partition in `id` order and marks them sent (docs/decisions.md).
CREATE TABLE decisions (
    id BIGSERIAL PRIMARY KEY,
    -- The partition stream whose event led to it: its relay publishes it.
    stream TEXT NOT NULL,
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    member_id BIGINT NOT NULL,
    -- The bus message (invitrack.bus.v1.Decision) without its id, which is this row's.
    payload BYTEA NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ
);

CREATE INDEX decisions_unsent ON decisions (stream, id) WHERE sent_at IS NULL;
CREATE INDEX decisions_sent ON decisions (sent_at) WHERE sent_at IS NOT NULL;
-- A guild's decisions in order: the bot looks ahead for messages to post together.
CREATE INDEX decisions_by_guild ON decisions (bot_id, guild_id, id);
