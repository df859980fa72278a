# Start/stop a private PostgreSQL server on 127.0.0.1 for the tests.
# Sourced by scripts/run-tests; exports ELIGIBILITY_PG_DSN.
pg_bin_dir() {
  local d
  for d in /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

pg_install() {
  # A fresh machine may lack the server: install it from Debian's packages.
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
  fi
}

pg_start() {
  local bin
  bin=$(pg_bin_dir) || { pg_install; bin=$(pg_bin_dir) || return 1; }
  PG_DIR=$(mktemp -d /tmp/eligibility-pg.XXXXXX)
  PG_PORT=${ELIGIBILITY_PG_PORT:-$(( 20000 + RANDOM % 20000 ))}
  local runas=()
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root.
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_DIR"
    runas=(runuser -u postgres --)
  fi
  "${runas[@]}" "$bin/initdb" -D "$PG_DIR/data" -U eligibility --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  "${runas[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DIR -c fsync=off" start >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_RUNAS=("${runas[@]}"); PG_BIN=$bin
  export ELIGIBILITY_PG_DSN="host=127.0.0.1 port=$PG_PORT user=eligibility dbname=postgres"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  "${PG_RUNAS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1
  rm -rf "$PG_DIR"
}
