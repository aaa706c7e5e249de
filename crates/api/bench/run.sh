#!/bin/sh
# The benchmark of BENCHMARKS.md: seed, start the API in release, measure with wrk.
#
#   crates/api/bench/run.sh                      # every run, defaults
#   RUNS="live user" DURATION=10s crates/api/bench/run.sh
#   API_COUNTS_CACHE_SECS=0 crates/api/bench/run.sh   # without the counts cache
#   API_RATE_LIMIT_PER_SECOND=1000000 API_RATE_LIMIT_BURST=1000000 ...   # every request through
#                                                # the per-key rate limiter (0 = off, the default)
#   SEED=0 ...                                   # reuse the seeded database (prints a new key)
#   WARMUP=15s ...                               # an unmeasured wrk run before each measured one
#                                                # (for `user`: every inviter once, at least)
#   BIN_DIR=/some/dir ...                        # binaries built elsewhere (invitrack-api and
#                                                # bench_seed), e.g. another version's, no build
#
# For each run it prints wrk's figures, the load average before it, the CPU seconds the API
# process and all PostgreSQL processes used during it, and the counts cache's counters.
set -eu
cd "$(dirname "$0")/../../.."
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/invitrack_bench}
if [ -n "${BIN_DIR:-}" ]; then
  API_BIN=$BIN_DIR/invitrack-api SEED_BIN=$BIN_DIR/bench_seed
else
  cargo build --release -p invitrack-api --bin invitrack-api --example bench_seed
  API_BIN=target/release/invitrack-api SEED_BIN=target/release/examples/bench_seed
fi
if [ "${SEED:-1}" = 0 ]; then
  KEY=$(BENCH_KEY_ONLY=1 $SEED_BIN)
else
  KEY=$($SEED_BIN)
fi
export KEY
PORT=18088
API_BIND=127.0.0.1:$PORT API_RATE_LIMIT_PER_SECOND=${API_RATE_LIMIT_PER_SECOND:-0} \
  API_RATE_LIMIT_BURST=${API_RATE_LIMIT_BURST:-100} \
  API_WORKERS=${API_WORKERS:-0} API_DB_CONNECTIONS=${API_DB_CONNECTIONS:-16} \
  API_COUNTS_CACHE_SECS=${API_COUNTS_CACHE_SECS:-300} \
  $API_BIN > /tmp/invitrack-bench-api.log 2>&1 &
API=$!
trap 'kill $API' EXIT
sleep 2
echo "API_WORKERS=${API_WORKERS:-0} API_DB_CONNECTIONS=${API_DB_CONNECTIONS:-16} API_COUNTS_CACHE_SECS=${API_COUNTS_CACHE_SECS:-300}"

# CPU ticks (utime + stime) of a set of processes.
ticks() {
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}'
  done | awk '{s += $1} END {print s + 0}'
}
HZ=$(getconf CLK_TCK)

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
for run in ${RUNS:-live user leaderboard leaderboard7d leaderboard30d}; do
  case $run in
    live) args="http://127.0.0.1:$PORT/health/live" ;;
    user) args="-s crates/api/bench/user.lua http://127.0.0.1:$PORT" ;;
    leaderboard) export RANGE=all; args="-s crates/api/bench/leaderboard.lua http://127.0.0.1:$PORT" ;;
    leaderboard7d) export RANGE=7d; args="-s crates/api/bench/leaderboard.lua http://127.0.0.1:$PORT" ;;
    leaderboard30d) export RANGE=30d; args="-s crates/api/bench/leaderboard.lua http://127.0.0.1:$PORT" ;;
  esac
  if [ -n "${WARMUP:-}" ] && [ "$run" != live ]; then
    # For `user` the warm-up asks for every inviter in turn, so the measured run sees the
    # steady state of a cache holding every inviter (API_COUNTS_CACHE_SECS=0 measures misses).
    # shellcheck disable=SC2086
    SWEEP=1 wrk -t2 -c"$CONNECTIONS" -d"$WARMUP" $args > /dev/null
  fi
  echo "== $run (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  api_before=$(ticks $API)
  # shellcheck disable=SC2046
  pg_before=$(ticks $(pgrep -x postgres || true))
  # shellcheck disable=SC2086
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency $args | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
  api_after=$(ticks $API)
  # shellcheck disable=SC2046
  pg_after=$(ticks $(pgrep -x postgres || true))
  echo "   CPU s: api $(( (api_after - api_before) / HZ )), postgres $(( (pg_after - pg_before) / HZ ))"
  curl -s "http://127.0.0.1:$PORT/metrics" | grep '^invitrack_api_counts_cache_total' | sed 's/^/   /' || true
done
