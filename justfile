# Everyday recipes. `just --list` shows them.

# Run everything against the Discord simulator (or Discord, with DISCORD_TOKEN set).
demo:
    cargo run -p invitrack -- demo

# The test suite, as CI runs it (needs PostgreSQL and NATS on 127.0.0.1).
test:
    cargo test --workspace

# What CI runs: services up, fmt, clippy, compose validation, tests.
ci:
    bash .ci/run

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

fmt:
    cargo fmt --all

# Apply database migrations (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/invitrack).
migrate:
    cargo run -p invitrack -- migrate

# Print a new read key for a bot: just key 123456789012345678
key bot_id:
    cargo run -p invitrack -- keys create --bot-id {{bot_id}}

# Run one service on its own, configured from the environment (see README).
sim:
    cargo run -p invitrack-sim
ingest:
    cargo run -p invitrack-ingest
worker:
    cargo run -p invitrack-worker
api:
    cargo run -p invitrack-api

# Validate docker-compose.yml offline with nothing set (apt-get install docker-compose);
# .ci/run also runs Compose v2, hadolint and dclint.
compose-check:
    env -i PATH="$PATH" docker-compose -f docker-compose.yml config -q
    env -i PATH="$PATH" docker-compose -f docker-compose.yml --profile nats-cluster --profile monitoring config -q

release:
    cargo build --release --workspace --bins

# Regenerate crates/storage/src/schema.rs from the migrations (needs the diesel CLI:
# cargo install diesel_cli --no-default-features --features postgres).
schema:
    psql -h 127.0.0.1 -U postgres -qc 'DROP DATABASE IF EXISTS invitrack_schema' -c 'CREATE DATABASE invitrack_schema'
    cd crates/storage && diesel migration run --database-url postgres://postgres@127.0.0.1:5432/invitrack_schema
    psql -h 127.0.0.1 -U postgres -qc 'DROP DATABASE invitrack_schema'
