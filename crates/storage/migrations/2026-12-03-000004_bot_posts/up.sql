-- What the bot did with each decision it had a channel for (docs/bot.md). Several decisions
-- of a guild may go out as one message (a raid): they share the `batch_id` (the first one's
-- decision id, whose nonce the message carries). The rows are written as `pending` before the
-- message is sent, so a post retried after a crash sends the same batch again; a decision
-- found here is never posted again.
CREATE TABLE bot_posts (
    decision_id BIGINT PRIMARY KEY,
    batch_id BIGINT NOT NULL,
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    -- The message Discord created; NULL until then, or when it refused.
    message_id BIGINT,
    outcome TEXT NOT NULL CHECK (outcome IN
        ('pending', 'posted', 'missing_permissions', 'unknown_channel', 'refused')),
    -- Discord's answer when it refused.
    detail TEXT,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX bot_posts_batches ON bot_posts (batch_id);
-- A guild's message health: its latest refusals.
CREATE INDEX bot_posts_refused ON bot_posts (bot_id, guild_id, at)
    WHERE outcome NOT IN ('posted', 'pending');
