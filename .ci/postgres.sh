# shellcheck shell=bash
# Sourced by .ci/run and benches/issuer_pg.sh: `start_postgres` installs
# PostgreSQL from Debian's packages when missing (as root), then starts a
# throwaway cluster: in a temporary directory, owned by an unprivileged
# user (PostgreSQL refuses to run as root; `nobody` when run as root), on
# 127.0.0.1 and a free port, trust authentication (loopback only, nothing
# to protect), fsync off. It exports AUTHLAYER_TEST_DATABASE_URL (the
# superuser `postgres`, database `postgres`) and removes everything when
# the shell exits.
# The newest server's bin directory: one with initdb and postgres (the
# client package alone also makes a bin directory, with psql in it).
pg_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"
      return 0
    fi
  done
}
start_postgres() {
  if [ -z "$(pg_bin)" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "PostgreSQL is not installed: apt-get install postgresql (as root)" >&2
      exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local bin user port
  bin="$(pg_bin)"
  PG_DIR="$(mktemp -d /tmp/authlayer-pg.XXXXXX)"
  trap stop_postgres EXIT
  user="$(id -un)"
  if [ "$(id -u)" = 0 ]; then
    user=nobody
    chown "$user" "$PG_DIR"
  fi
  as_pg() { if [ "$user" = "$(id -un)" ]; then "$@"; else runuser -u "$user" -- "$@"; fi; }
  as_pg "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-sync >"$PG_DIR/initdb.log"
  for port in $(seq 55432 55532); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      continue
    fi
    if as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$PG_DIR -c max_connections=400 -c fsync=off" >/dev/null; then
      PG_USER="$user"
      export AUTHLAYER_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
      echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $PG_DIR)"
      return 0
    fi
  done
  cat "$PG_DIR/server.log" >&2 || true
  echo "cannot start PostgreSQL" >&2
  exit 1
}
stop_postgres() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
    if [ -n "${PG_USER:-}" ]; then
      if [ "$PG_USER" = "$(id -un)" ]; then
        "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
      else
        runuser -u "$PG_USER" -- "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
      fi
    fi
    rm -rf "$PG_DIR"
  fi
}

