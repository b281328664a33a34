#!/usr/bin/env bash
# HTTP load figures for the `orders` example on loopback (issue 5; the
# results are in BENCHMARKS.md).
#
# The server runs on one core (taskset -c $SERVER_CPU), wrk on another
# (taskset -c $CLIENT_CPU). Keys come from a local test issuer
# (examples/bench_issuer.rs) by OIDC discovery on 127.0.0.1, as in
# production. Three scenarios, each after a short warm-up:
#   GET /health            no auth (the floor of the HTTP stack)
#   GET /orders/1          one repeated token (verified-token cache hits)
#   GET /orders/1          a token never seen before on every request
#
# Loopback only; every run is bounded in time (DURATION seconds, wrk inside
# `timeout`), and the helper processes stop with the script (and the test
# issuer by itself after 15 minutes at most).
#
# Settings (environment): DURATION=10 CONNECTIONS=32 POOL=200000 ALG=EdDSA
# (EdDSA | ES256 | RS256: the fresh tokens' algorithm; RS256 mints slowly,
# lower POOL), SERVER_CPU=0 CLIENT_CPU=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
POOL=${POOL:-200000}
ALG=${ALG:-EdDSA}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

say() { printf '== %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (Debian package)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y wrk >/dev/null 2>&1 ||
    { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi

say "building the orders example and the test issuer (release)"
cargo build --release --quiet --example orders --example bench_issuer
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

say "minting $POOL fresh $ALG tokens and serving the JWKS on 127.0.0.1"
"$bin/bench_issuer" "$work" "$POOL" "$ALG" 900 >"$work/issuer.out" 2>&1 &
pids+=($!)
issuer=$(wait_for "$work/issuer.out" "issuer " 600)

say "starting orders on CPU $SERVER_CPU (issuer $issuer)"
RUST_LOG=warn AUTH_ISSUER="$issuer" PORT=0 \
  taskset -c "$SERVER_CPU" "$bin/orders" >"$work/orders.out" 2>&1 &
pids+=($!)
orders_pid=$!
addr=$(wait_for "$work/orders.out" "listening on " 60)
url="http://$addr"

token=$(cat "$work/token")
export TOKENS_FILE="$work/tokens.txt"

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
  awk '{ print $14 + $15 }' "/proc/$orders_pid/stat"
}

results=()
scenario() {
  local name=$1 before after busy
  shift
  say "$name: ${DURATION}s, $CONNECTIONS connections"
  before=$(server_ticks)
  load "$DURATION" "$@" >"$work/$name.txt"
  after=$(server_ticks)
  # Share of its core the server used: near 100% means the server, not
  # wrk, set the pace.
  busy=$(((after - before) * 100 / ($(getconf CLK_TCK) * DURATION)))
  results+=("$name $(parse "$work/$name.txt") $busy%")
}

say "warm-up (${WARMUP}s each)"
load "$WARMUP" "$url/health" >/dev/null
load "$WARMUP" -H "Authorization: Bearer $token" "$url/orders/1" >/dev/null

scenario health "$url/health"
scenario repeated_token -H "Authorization: Bearer $token" "$url/orders/1"
scenario fresh_token -s benches/fresh_tokens.lua "$url"

echo
echo "| scenario (wrk -t1 -c$CONNECTIONS, ${DURATION}s) | req/s | p50 | p99 | requests | non-2xx | server CPU |"
echo "|---|---|---|---|---|---|---|"
for r in "${results[@]}"; do
  read -r name rps p50 p99 n bad busy <<<"$r"
  case $name in
  health) label='`GET /health` (no auth)' ;;
  repeated_token) label='`GET /orders/1`, one repeated token' ;;
  fresh_token) label="\`GET /orders/1\`, fresh $ALG token per request" ;;
  esac
  echo "| $label | $rps | $p50 | $p99 | $n | $bad | $busy |"
done

read -r _ health_rps _ <<<"${results[0]}"
read -r _ repeated_rps _ <<<"${results[1]}"
read -r _ _ _ _ fresh_n fresh_bad _ <<<"${results[2]}"
echo
python3 - "$health_rps" "$repeated_rps" <<'EOF'
import sys
health, repeated = float(sys.argv[1]), float(sys.argv[2])
ratio = repeated / health
print(f"repeated-token route / health: {ratio:.2f} "
      f"(target >= 0.90: {'met' if ratio >= 0.9 else 'MISSED'})")
EOF
if [ "$fresh_n" -gt "$POOL" ]; then
  echo "warning: the fresh-token run sent $fresh_n requests for $POOL tokens:" \
    "the pool wrapped and later requests were cache hits; raise POOL"
fi
if [ "$fresh_bad" != 0 ]; then
  echo "warning: $fresh_bad non-2xx responses in the fresh-token run"
fi
