#!/bin/sh
# schemathesis (PyPI: `pip install schemathesis`, 4.x) driven by /openapi.json against the API
# running on a freshly seeded database with an admin key. See FUZZING.md.
#
#   crates/api/fuzz/schemathesis.sh                 # both passes, 100 examples per operation
#   EXAMPLES=500 SEED=1 crates/api/fuzz/schemathesis.sh
#
# Pass "broad": every parameter generated (ids of other bots and guilds, malformed values).
# Pass "deep": bot_id and guild_id pinned to the seeded guild, so valid requests reach the
# database with real rows (joins, members, codes, bonus, resets, settings, audit).
# Fails when schemathesis finds anything or the API logged a panic. One schemathesis worker:
# with several, CPython 3.11.7 raises "AST constructor recursion depth mismatch" inside
# hypothesis (a CPython bug with concurrent ast parsing), reported as runtime errors.
set -eu
cd "$(dirname "$0")/../../.."
DB="invitrack_fuzz_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
PORT=${PORT:-18089}
EXAMPLES=${EXAMPLES:-100}
SEED=${SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
cargo build -p invitrack-api --bin invitrack-api --example fuzz_seed
KEY=$(target/debug/examples/fuzz_seed)
LOG=/tmp/invitrack-fuzz-api.log
API_BIND=127.0.0.1:$PORT API_RATE_LIMIT_PER_SECOND=0 RUST_LOG=warn \
  target/debug/invitrack-api > "$LOG" 2>&1 &
API=$!
cleanup() {
  kill "$API" 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" postgres
}
trap cleanup EXIT
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$PORT/health/ready" > /dev/null && break
  sleep 0.2
done
echo "schemathesis $(schemathesis --version | awk '{print $NF}'), seed $SEED, $EXAMPLES examples per operation"
status=0
for pass in broad deep; do
  config=/dev/null
  if [ $pass = deep ]; then
    config=$(mktemp)
    printf '[parameters]\n"path.bot_id" = "859000000000000001"\n"path.guild_id" = "417977361011572747"\n"query.bot_id" = "859000000000000001"\n"query.guild_id" = "417977361011572747"\n' > "$config"
  fi
  echo "== pass $pass"
  schemathesis --config-file "$config" run "http://127.0.0.1:$PORT/openapi.json" \
    -H "Authorization: Bearer $KEY" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$EXAMPLES" --seed "$SEED" \
    --workers 1 --no-color \
    --report junit --report-dir "/tmp/invitrack-fuzz-$pass" || status=1
done
if grep -n "panicked" "$LOG"; then
  echo "the API panicked (see $LOG)"
  status=1
fi
exit $status
