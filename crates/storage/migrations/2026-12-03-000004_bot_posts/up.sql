-- What the bot did with each decision it had a channel for: posted it (and the message id), or
-- why Discord refused it. A decision found here is never posted again (docs/bot.md).
CREATE TABLE bot_posts (
    decision_id BIGINT PRIMARY KEY,
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    -- The message Discord created; NULL when it refused.
    message_id BIGINT,
    outcome TEXT NOT NULL CHECK (outcome IN
        ('posted', 'missing_permissions', 'unknown_channel', 'refused')),
    -- Discord's answer when it refused.
    detail TEXT,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A guild's message health: its latest refusals.
CREATE INDEX bot_posts_refused ON bot_posts (bot_id, guild_id, at) WHERE outcome <> 'posted';
