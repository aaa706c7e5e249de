#!/bin/sh
# The benchmark of BENCHMARKS.md: seed, start the API in release, measure with wrk.
set -eu
cd "$(dirname "$0")/../../.."
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/invitrack_bench}
cargo build --release -p invitrack-api --bin invitrack-api --example bench_seed
KEY=$(target/release/examples/bench_seed)
export KEY
API_BIND=127.0.0.1:18088 API_RATE_LIMIT_PER_SECOND=0 API_DB_CONNECTIONS=${API_DB_CONNECTIONS:-16} \
  target/release/invitrack-api > /tmp/invitrack-bench-api.log 2>&1 &
API=$!
trap 'kill $API' EXIT
sleep 2
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
for run in live user leaderboard leaderboard7d; do
  case $run in
    live) args="http://127.0.0.1:18088/health/live" ;;
    user) args="-s crates/api/bench/user.lua http://127.0.0.1:18088" ;;
    leaderboard) args="-s crates/api/bench/leaderboard.lua http://127.0.0.1:18088" ;;
    leaderboard7d) export RANGE=7d; args="-s crates/api/bench/leaderboard.lua http://127.0.0.1:18088" ;;
  esac
  echo "== $run"
  # shellcheck disable=SC2086
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency $args | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
done
