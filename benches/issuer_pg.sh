#!/usr/bin/env bash
# Logins and refreshes per second of the bundled issuer on PostgreSQL, with
# one and with two replicas on one database: a bounded load on 127.0.0.1
# (examples/issuer_load.rs, SECONDS per scenario, CONCURRENCY workers).
#
#   bash benches/issuer_pg.sh [RUNS] [SECONDS] [CONCURRENCY]     # 2 5 16
#
# Uses AUTHLAYER_TEST_DATABASE_URL when set, else starts a throwaway
# cluster (.ci/postgres.sh). Each run gets a fresh database and fresh
# replicas (release build, as shipped: default logging, the audit log on
# standard output, which goes to a file here). The users
# `load0` … (one per worker) have the default Argon2 cost (19 MiB, 2
# passes), as `issuer hash` makes.
# ISSUER_LOAD_PROFILE=dev uses the dev build instead (Argon2, BLAKE2 and
# aws-lc optimized there too; the rest not), when a release build is too
# slow to make.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-2}" seconds="${2:-5}" concurrency="${3:-16}"

if [ "${ISSUER_LOAD_PROFILE:-release}" = dev ]; then
  cargo build --example issuer --example issuer_load
  bin=target/debug/examples
else
  cargo build --release --example issuer --example issuer_load
  bin=target/release/examples
fi
if [ -z "${AUTHLAYER_TEST_DATABASE_URL:-}" ]; then
  . .ci/postgres.sh
  start_postgres
fi
admin="$AUTHLAYER_TEST_DATABASE_URL"
work="$(mktemp -d /tmp/authlayer-issuer-load.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  if declare -F stop_postgres >/dev/null; then stop_postgres; fi
}
trap cleanup EXIT

printf 'load-password' | "$bin/issuer" hash >"$work/hash"
for i in $(seq 0 $((concurrency - 1))); do
  printf '[[users]]\nusername = "load%s"\npassword_hash = "%s"\nscopes = ["orders:read"]\n' \
    "$i" "$(cat "$work/hash")"
done >"$work/users.toml"

# Starts a replica on DATABASE_URL=$1; prints its base URL.
replica() {
  local out="$work/replica-$RANDOM.out"
  DATABASE_URL="$1" ISSUER_URL=http://issuer.load.test PORT=0 \
    USERS_FILE="$work/users.toml" "$bin/issuer" >"$out" 2>"$out.err" &
  pids+=("$!")
  for _ in $(seq 1 200); do
    if grep -q '^listening on ' "$out"; then
      echo "http://$(sed -n 's/^listening on //p' "$out" | head -n 1)"
      return
    fi
    sleep 0.1
  done
  cat "$out.err" >&2
  exit 1
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
for run in $(seq 1 "$runs"); do
  for replicas in 1 2; do
    db="issuer_load_${run}_${replicas}_$$"
    psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
    url="${admin%/*}/$db"
    urls=()
    for _ in $(seq 1 "$replicas"); do urls+=("$(replica "$url")"); done
    for mode in login refresh; do
      echo "run $run: $("$bin/issuer_load" "$mode" "$seconds" "$concurrency" load load-password "${urls[@]}")"
    done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    pids=()
    psql -q "$admin" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
