#!/usr/bin/env bash
# A project-local PostgreSQL for development and tests.
#
#   scripts/postgres.sh [start]   start (or reuse) the server, create and migrate the database,
#                                 print DATABASE_URL=...
#   scripts/postgres.sh stop      stop the server
#   scripts/postgres.sh status    exit 0 and print the URL when running, exit 3 otherwise
#   scripts/postgres.sh url       print the URL
#   scripts/postgres.sh reset     drop the local dev database and migrate a new one (for when a
#                                 migration it applied has since been edited)
#
# With DATABASE_URL set, `start` starts nothing: it only migrates that database.
#
# The cluster lives in .local/postgres/data (git-ignored; see resolve_pg_root for the one
# exception), listens on 127.0.0.1 only, on $PGPORT_VAULT (default 54329), and TRUSTS every
# loopback connection without a password.
# That is for local development only: never copy this cluster's pg_hba.conf or its fsync=off
# anywhere that holds data worth keeping.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

PORT="${PGPORT_VAULT:-54329}"
# VAULT_PG_DATABASE names another database on the same server (the demo keeps its own).
DB_NAME="${VAULT_PG_DATABASE:-ephemeral_vault}"
LOCAL_URL="postgres://postgres@127.0.0.1:$PORT/$DB_NAME"
# Roles the migrations create without LOGIN; on this dev cluster they may log in (trust auth)
# so the services can be run under their real, least-privileged role.
APP_ROLES=(vault_indexer vault_service vault_readonly)

# The newest installed server's binaries; Debian keeps them off PATH.
pg_bin_dir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

ensure_server_installed() {
  PG_BIN="$(pg_bin_dir || true)"
  if [ -z "$PG_BIN" ]; then
    log "installing PostgreSQL (Debian package)"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    PG_BIN="$(pg_bin_dir)" || die "PostgreSQL installed but no initdb/pg_ctl under /usr/lib/postgresql"
  fi
}

# initdb refuses to run as root, so as root every server command runs as the `postgres` system
# user (the Debian package creates it); anyone else runs the server as themselves.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    # From /, so the postgres user is not left in a directory it may not enter.
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

ensure_pg_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id -u postgres >/dev/null 2>&1 && return 0
  log "creating the postgres system user"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres
}

# The cluster lives in .local/postgres of the checkout. The server runs as the postgres user, so
# that user must be able to reach it: a checkout under a directory closed to other users (root's
# home is 0700) cannot host it, and the cluster then lives under /var/lib/ephemeral-vault, in a
# folder named after the checkout's path.
resolve_pg_root() {
  PG_ROOT="$REPO_ROOT/.local/postgres"
  PG_ROOT_MOVED=""
  if [ "$(id -u)" -eq 0 ] && id -u postgres >/dev/null 2>&1; then
    mkdir -p "$REPO_ROOT/.local"
    if ! runuser -u postgres -- test -x "$REPO_ROOT/.local"; then
      PG_ROOT="/var/lib/ephemeral-vault/$(printf '%s' "$REPO_ROOT" | sha256sum | cut -c1-16)/postgres"
      PG_ROOT_MOVED=1
    fi
  fi
  DATA_DIR="$PG_ROOT/data"
  LOG_FILE="$PG_ROOT/server.log"
}

# Whether the server of this data directory runs.
running() {
  [ -f "$DATA_DIR/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1
}

# Line 4 of postmaster.pid is the port the running server listens on.
running_port() {
  sed -n 4p "$DATA_DIR/postmaster.pid"
}

init_cluster() {
  [ -f "$DATA_DIR/PG_VERSION" ] && return 0
  log "initdb $DATA_DIR"
  mkdir -p "$PG_ROOT"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_ROOT"
  as_pg test -w "$PG_ROOT" ||
    die "the postgres user cannot write $PG_ROOT (is a parent directory closed to other users?)"
  as_pg "$PG_BIN/initdb" -D "$DATA_DIR" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=trust >/dev/null
  # Loopback only, trust: dev-only (see the header).
  cat >"$DATA_DIR/pg_hba.conf" <<'EOF'
# Development cluster of scripts/postgres.sh: trust on loopback, nothing else. Dev only.
local all all              trust
host  all all 127.0.0.1/32 trust
EOF
  echo "include_if_exists = 'vault-dev.conf'" >>"$DATA_DIR/postgresql.conf"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$DATA_DIR/pg_hba.conf"
  return 0
}

# Rewritten at every start so a changed port takes effect.
write_settings() {
  local socket_dir="$PG_ROOT"
  # A unix socket path is limited to 107 bytes; a deep checkout goes TCP-only.
  if [ $((${#socket_dir} + 20)) -gt 107 ]; then
    warn "$socket_dir is too long for a unix socket: TCP only"
    socket_dir=""
  fi
  as_pg tee "$DATA_DIR/vault-dev.conf" >/dev/null <<EOF
# Written by scripts/postgres.sh at every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$socket_dir'
# A throwaway dev cluster: durability is not worth the disk flushes.
fsync = off
synchronous_commit = off
full_page_writes = off
# Each test database holds a few pools; leave room for parallel test binaries.
max_connections = 200
EOF
}

start_server() {
  if running; then
    local port
    port="$(running_port)"
    [ "$port" = "$PORT" ] ||
      die "the server in $DATA_DIR already runs on port $port; run '$0 stop' first to move it to $PORT"
    return 0
  fi
  # Another server (say, another checkout's) on the port would make the start fail with only a
  # line in the server log: say it plainly instead.
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "127.0.0.1:$PORT is already in use (another checkout's PostgreSQL?): stop it, or set PGPORT_VAULT to a free port"
  fi
  write_settings
  log "starting PostgreSQL on 127.0.0.1:$PORT"
  # 9>&-: the server must not inherit the start lock (see cmd_start), or it would hold it for
  # as long as it runs and every later start would wait forever.
  as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 60 start >/dev/null 9>&- ||
    die "PostgreSQL did not start; see $LOG_FILE"
}

# Migrations run through sqlx (the indexer crate's vault-migrate), never by feeding the files to
# psql: sqlx records each one with its checksum in _sqlx_migrations.
migrate() {
  ensure_toolchain
  # RUST_BACKTRACE=0: a refused migration should read as its one-line reason.
  (cd "$REPO_ROOT" && DATABASE_URL="$1" RUST_BACKTRACE=0 \
    cargo run -q -p vault-db --bin vault-migrate 9>&-)
}

allow_dev_logins() {
  local sql="" role
  for role in "${APP_ROLES[@]}"; do sql+="ALTER ROLE $role LOGIN; "; done
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$LOCAL_URL" -c "$sql" >/dev/null
}

# Installs, initializes and starts the local server as needed, holding the start lock (fd 9)
# until the caller releases it: two concurrent starts (say, two test scripts) must not both
# initdb or both start.
local_server_up() {
  ensure_server_installed
  ensure_pg_user
  resolve_pg_root
  [ -z "$PG_ROOT_MOVED" ] ||
    warn "the postgres user cannot reach $REPO_ROOT/.local: the cluster lives in $PG_ROOT"
  mkdir -p "$PG_ROOT"
  exec 9>"$REPO_ROOT/.local/postgres.lock"
  flock 9
  init_cluster
  start_server
}

migrate_local() {
  migrate "$LOCAL_URL" ||
    die "migrating $LOCAL_URL failed. If a migration was edited after this dev database applied it, '$0 reset' recreates the database."
  allow_dev_logins
}

cmd_start() {
  if [ -n "${DATABASE_URL:-}" ]; then
    migrate "$DATABASE_URL" || die "migrating $DATABASE_URL failed"
    echo "DATABASE_URL=$DATABASE_URL"
    return 0
  fi
  local_server_up
  migrate_local
  flock -u 9
  echo "DATABASE_URL=$LOCAL_URL"
}

# Drops the local dev database and migrates a new one. Never touches $DATABASE_URL's database.
cmd_reset() {
  [ -z "${DATABASE_URL:-}" ] || die "reset only recreates the local dev database; unset DATABASE_URL"
  local_server_up
  log "recreating $DB_NAME"
  # Warnings only: on a first run "does not exist, skipping" is expected, not news.
  PGOPTIONS='--client-min-messages=warning' "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -d "postgres://postgres@127.0.0.1:$PORT/postgres" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null
  migrate_local
  flock -u 9
  echo "DATABASE_URL=$LOCAL_URL"
}

cmd_stop() {
  PG_BIN="$(pg_bin_dir || true)"
  resolve_pg_root
  if [ -z "$PG_BIN" ] || ! running; then
    log "PostgreSQL is not running"
    return 0
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w stop >/dev/null
  log "PostgreSQL stopped"
}

cmd_status() {
  PG_BIN="$(pg_bin_dir || true)"
  resolve_pg_root
  if [ -n "$PG_BIN" ] && running; then
    echo "running: postgres://postgres@127.0.0.1:$(running_port)/$DB_NAME"
    return 0
  fi
  echo "not running"
  return 3
}

case "${1:-start}" in
  start) cmd_start ;;
  # The server alone, no migration: for tests that stop and restart it under a running indexer.
  server-start) local_server_up; flock -u 9 ;;
  reset) cmd_reset ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) echo "$LOCAL_URL" ;;
  *) die "usage: $0 [start|stop|status|url|reset|server-start]" ;;
esac
