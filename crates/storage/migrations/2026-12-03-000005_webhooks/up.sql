-- Webhooks a guild's admins registered, and each event's delivery to each of them
-- (docs/webhooks.md). A delivery row is written once per webhook and decision (the decision
-- stream may bring a decision twice), holds the exact body that is signed and sent, and is
-- retried until `next_attempt_at` passes a day after it was created.
CREATE TABLE webhooks (
    id BIGSERIAL PRIMARY KEY,
    bot_id BIGINT NOT NULL,
    guild_id BIGINT NOT NULL,
    url TEXT NOT NULL,
    -- `member.join`, `member.leave`.
    events TEXT[] NOT NULL,
    -- The HMAC key of the `Invitrack-Signature` header; shown once, when created.
    secret TEXT NOT NULL,
    author TEXT NOT NULL,
    key_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_by_guild ON webhooks (bot_id, guild_id);

CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    decision_id BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INT NOT NULL DEFAULT 0,
    -- When it may be tried next; while an attempt is under way, when that attempt is given up
    -- for lost (a sender that crashed).
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The receiver's HTTP status at the last attempt, or why there was none.
    last_status INT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    UNIQUE (webhook_id, decision_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE status <> 'pending';
