-- Dashboard sessions of people signed in with Discord (`docs/dashboard.md#login`): the cookie's
-- token is kept hashed; `guild_ids` are the guilds (a JSON array of id strings) where, at login,
-- the user had Manage Server and the bot was present; `csrf_token` must come back with writes.
CREATE TABLE dashboard_sessions (
    token_hash TEXT PRIMARY KEY,
    bot_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    username TEXT NOT NULL,
    guild_ids JSONB NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
