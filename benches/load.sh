#!/usr/bin/env bash
# HTTP load figures of the `orders` example AS SHIPPED (results in
# BENCHMARKS.md): release build, default RUST_LOG (unset: `info`, human log
# on stderr), the audit log on and written to a file (AUDIT_LOG=path), the
# server on one core (taskset -c $SERVER_CPU), wrk on another
# (taskset -c $CLIENT_CPU).
#
# Keys come from a local test issuer (examples/bench_issuer.rs) by OIDC
# discovery on 127.0.0.1, as in production. Each run (RUNS, default 2)
# starts a fresh `orders` and measures, after a short warm-up:
#   health          GET /health                  no auth: the floor of the HTTP stack
#   repeated_token  GET /orders/1, one token     verified-token cache hits
#   fresh_token     GET /orders/1, a new token per request (FRESH=1 only)
# then stops it with SIGTERM (a graceful stop flushes the audit log) and
# compares the audit records with the requests wrk completed. Then the same
# repeated-token load against the hand-written jsonwebtoken middleware
# (examples/bench_baseline.rs, same key, same token, same core).
#
# Targets, checked within each run: repeated_token >= 0.9 x
# health; repeated_token >= 4 x baseline; no audit record lost. RS256
# tokens by default: what most identity providers sign with.
#
# Loopback only; every run is bounded in time (DURATION seconds, wrk inside
# `timeout`), and the helper processes stop with the script (and the test
# issuer by itself after 15 minutes at most).
#
# Settings (environment): DURATION=5 RUNS=2 WARMUP=1 CONNECTIONS=32
# ALG=RS256 (RS256 | ES256 | EdDSA) FRESH=0 POOL=200000 SERVER_CPU=0
# CLIENT_CPU=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
RUNS=${RUNS:-2}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
ALG=${ALG:-RS256}
FRESH=${FRESH:-0}
POOL=${POOL:-200000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
[ "$FRESH" = 1 ] || POOL=1

say() { printf '== %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (Debian package)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y wrk >/dev/null 2>&1 ||
    { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi

say "building the orders example, the baseline and the test issuer (release)"
cargo build --release --quiet --example orders --example bench_baseline --example bench_issuer
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release/examples"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (at most $3 seconds) for a line starting with $2 in file $1; prints
# the rest of the line.
wait_for() {
  local file=$1 prefix=$2 limit=$3 line
  for _ in $(seq 1 $((limit * 10))); do
    line=$(grep -m1 "^$prefix" "$file" 2>/dev/null || true)
    if [ -n "$line" ]; then
      printf '%s\n' "${line#"$prefix"}"
      return 0
    fi
    sleep 0.1
  done
  say "timed out waiting for '$prefix' in $file:"
  cat "$file" >&2
  return 1
}

say "minting tokens ($ALG) and serving the JWKS on 127.0.0.1"
"$bin/bench_issuer" "$work" "$POOL" "$ALG" 900 >"$work/issuer.out" 2>&1 &
pids+=($!)
issuer=$(wait_for "$work/issuer.out" "issuer " 600)
token=$(cat "$work/token")
export TOKENS_FILE="$work/tokens.txt"

server_pid=""
# Starts $1 (orders or bench_baseline) on the server core with the rest of
# the arguments as environment; sets $url and $server_pid.
start_server() {
  local name=$1
  shift
  env -u RUST_LOG "$@" AUTH_ISSUER="$issuer" PORT=0 \
    taskset -c "$SERVER_CPU" "$bin/$name" >"$work/$name.out" 2>"$work/$name.err" &
  server_pid=$!
  pids+=("$server_pid")
  url="http://$(wait_for "$work/$name.out" "listening on " 60)"
}

# Stops the server gracefully (SIGTERM) and waits for it.
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
}

# wrk on the client core, bounded by -d and by `timeout`.
load() {
  local seconds=$1
  shift
  timeout $((seconds + 30)) taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --latency "$@"
}

# Prints "req/s p50 p99 requests non2xx" of a wrk report.
parse() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    / requests in / { n = $1 }
    /Non-2xx or 3xx responses:/ { bad = $5 }
    END { printf "%s %s %s %s %s\n", rps, p50, p99, n, (bad == "" ? 0 : bad) }
  ' "$1"
}

# CPU time (utime + stime, in clock ticks) the server has used so far.
server_ticks() {
  awk '{ print $14 + $15 }' "/proc/$server_pid/stat"
}

# Runs one measured scenario: name, run, then wrk's arguments. Appends
# "run name req/s p50 p99 requests non2xx cpu%" to $work/results.
scenario() {
  local name=$1 run=$2 before after busy
  shift 2
  say "run $run, $name: ${DURATION}s, $CONNECTIONS connections"
  before=$(server_ticks)
  load "$DURATION" "$@" >"$work/$name-$run.txt"
  after=$(server_ticks)
  # Share of its core the server used: near 100% means the server, not
  # wrk, set the pace.
  busy=$(((after - before) * 100 / ($(getconf CLK_TCK) * DURATION)))
  echo "$run $name $(parse "$work/$name-$run.txt") $busy%" >>"$work/results"
}

: >"$work/results"
: >"$work/audit"
for run in $(seq 1 "$RUNS"); do
  audit="$work/audit-$run.jsonl"
  start_server orders AUDIT_LOG="$audit"
  say "run $run: orders as shipped (audit log to a file), warm-up ${WARMUP}s each"
  load "$WARMUP" "$url/health" >/dev/null
  load "$WARMUP" -H "Authorization: Bearer $token" "$url/orders/1" >"$work/warmup-$run.txt"
  scenario health "$run" "$url/health"
  scenario repeated_token "$run" -H "Authorization: Bearer $token" "$url/orders/1"
  if [ "$FRESH" = 1 ]; then
    scenario fresh_token "$run" -s benches/fresh_tokens.lua "$url"
  fi
  stop_server
  # Every completed /orders request must have its record with status 200.
  sent=0
  for f in "$work/warmup-$run.txt" "$work/repeated_token-$run.txt" "$work/fresh_token-$run.txt"; do
    [ -f "$f" ] && sent=$((sent + $(parse "$f" | awk '{ print $4 }')))
  done
  records=$(wc -l <"$audit")
  ok_records=$(grep -c '"status":200' "$audit" || true)
  dropped=$(grep -c 'AUDIT RECORDS' "$work/orders.err" || true)
  echo "$run $sent $records $ok_records $dropped $(du -h "$audit" | cut -f1)" >>"$work/audit"

  start_server bench_baseline
  say "run $run: hand-written jsonwebtoken middleware, warm-up ${WARMUP}s"
  load "$WARMUP" -H "Authorization: Bearer $token" "$url/orders/1" >/dev/null
  scenario baseline "$run" -H "Authorization: Bearer $token" "$url/orders/1"
  stop_server
done

label() {
  case $1 in
  health) echo '`orders` `GET /health` (no auth)' ;;
  repeated_token) echo '`orders` `GET /orders/1`, one repeated token' ;;
  fresh_token) echo "\`orders\` \`GET /orders/1\`, fresh $ALG token per request" ;;
  baseline) echo 'hand-written jsonwebtoken middleware, `GET /orders/1`, same token' ;;
  esac
}

echo
echo "| run | scenario (wrk -t1 -c$CONNECTIONS, ${DURATION}s) | req/s | p50 | p99 | requests | non-2xx | server CPU |"
echo "|---|---|---|---|---|---|---|---|"
while read -r run name rps p50 p99 n bad busy; do
  echo "| $run | $(label "$name") | $rps | $p50 | $p99 | $n | $bad | $busy |"
done <"$work/results"

echo
echo "| run | /orders requests completed (warm-up + measured) | audit records | of them status 200 | drop warnings | audit log size |"
echo "|---|---|---|---|---|---|"
while read -r run sent records ok dropped size; do
  echo "| $run | $sent | $records | $ok | $dropped | $size |"
done <"$work/audit"

echo
python3 - "$work/results" "$work/audit" <<'EOF'
import statistics, sys
rps, per_cpu = {}, {}
for line in open(sys.argv[1]):
    fields = line.split()
    run, name, value, busy = fields[0], fields[1], float(fields[2]), fields[-1]
    rps.setdefault(run, {})[name] = value
    # Requests per second of server CPU: what a dedicated core would serve.
    per_cpu.setdefault(run, {})[name] = value / max(float(busy.rstrip("%")), 1) * 100
def show(name, table, a, b, target):
    values = [r[a] / r[b] for r in table.values()]
    med = statistics.median(values)
    each = ", ".join(f"{v:.2f}" for v in values)
    print(f"{name}: median {med:.2f} (runs: {each}); target >= {target}: "
          f"{'met' if min(values) >= target else 'MISSED'}")
print("req/s (as wrk saw them):")
show("  repeated token / health", rps, "repeated_token", "health", 0.9)
show("  repeated token / hand-written middleware", rps, "repeated_token", "baseline", 4.0)
print("req per server CPU-second (robust when the server did not get its whole core):")
show("  repeated token / health", per_cpu, "repeated_token", "health", 0.9)
show("  repeated token / hand-written middleware", per_cpu, "repeated_token", "baseline", 4.0)
for run, r in sorted(per_cpu.items()):
    print(f"  run {run}: " + ", ".join(f"{k} {1e6 / v:.1f} us CPU/request" for k, v in r.items()))
for line in open(sys.argv[2]):
    run, sent, records, ok, dropped, _ = line.split()
    lost = int(sent) - int(ok)
    print(f"run {run}: {sent} /orders responses, {ok} records with status 200, "
          f"{records} records in all, {dropped} drop warnings: "
          f"{'no record lost' if lost <= 0 and dropped == '0' else 'RECORDS LOST'}")
EOF
