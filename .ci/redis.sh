# shellcheck shell=bash
# Sourced by .ci/run: `start_redis` installs Redis from Debian's packages
# when missing (as root), then starts a throwaway redis-server as the
# current user: on 127.0.0.1 and a free port, no persistence, its files in
# a temporary directory. It exports REDIS_URL (the DPoP replay store tests,
# src/dpop/redis_store.rs, use it; they also start redis-servers of their
# own from PATH) and stops the server and removes everything when the shell
# exits, after whatever exit trap was set before it.
start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      echo "redis-server is not installed: apt-get install redis-server (as root)" >&2
      exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # The package's own service is not wanted here: policy-rc.d 101 keeps
    # it from starting (and from holding port 6379).
    local policy=/usr/sbin/policy-rc.d created_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod +x "$policy"
      created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    if [ -n "$created_policy" ]; then
      rm -f "$policy"
    fi
  fi
  REDIS_DIR="$(mktemp -d /tmp/authlayer-redis.XXXXXX)"
  # Chain to the exit trap already set (PostgreSQL's), rather than replace it.
  local previous
  previous="$(trap -p EXIT | sed -e "s/^trap -- '\(.*\)' EXIT$/\1/")"
  # shellcheck disable=SC2064 # expanded now on purpose
  trap "stop_redis${previous:+; $previous}" EXIT
  local port
  for port in $(seq 56379 56479); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      continue
    fi
    if redis-server --bind 127.0.0.1 --port "$port" --dir "$REDIS_DIR" \
      --save "" --appendonly no --daemonize yes \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" &&
      redis_ready "$port"; then
      export REDIS_URL="redis://127.0.0.1:$port"
      echo "Redis $(redis-server --version | awk '{print $3}' | sed 's/^v=//') on 127.0.0.1:$port (files in $REDIS_DIR)"
      return 0
    fi
    stop_redis_process
  done
  cat "$REDIS_DIR/redis.log" >&2 || true
  echo "cannot start Redis" >&2
  exit 1
}
# Whether the server on $1 answers PING within about 10 s.
redis_ready() {
  local _
  for _ in $(seq 1 100); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
# Stops the server and waits (up to about 5 s) until it has exited.
stop_redis_process() {
  if [ -n "${REDIS_DIR:-}" ] && [ -f "$REDIS_DIR/redis.pid" ]; then
    local pid _
    pid="$(cat "$REDIS_DIR/redis.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    rm -f "$REDIS_DIR/redis.pid"
  fi
}
stop_redis() {
  stop_redis_process
  if [ -n "${REDIS_DIR:-}" ] && [ -d "$REDIS_DIR" ]; then
    rm -rf "$REDIS_DIR"
  fi
}
