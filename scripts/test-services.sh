#!/usr/bin/env bash
# Start the services the tests use, and print the PostgreSQL URL for HYPERLAW_TEST_POSTGRES.
# Also installs Debian's chromium for the dashboard's browser tests when it is missing.
#
#   export HYPERLAW_TEST_POSTGRES="$(scripts/test-services.sh)"
#   scripts/test-services.sh restart-postgres   # fast restart (the chaos test uses it)
#   scripts/test-services.sh stop-postgres
#
# Installs Debian's PostgreSQL server if it is missing, then runs a private cluster (its own
# data directory, port and socket directory; nothing shared with a system server) as the
# `postgres` user when run as root. Idempotent: a running cluster is reused. Progress goes to
# stderr; stdout carries only the URL.
#
# Settings (environment): HYPERLAW_PG_DIR (data and logs, default $TMPDIR/hyperlaw-test-pg),
# HYPERLAW_PG_PORT (default 55432).
set -euo pipefail

PG_DIR="${HYPERLAW_PG_DIR:-${TMPDIR:-/tmp}/hyperlaw-test-pg}"
PG_PORT="${HYPERLAW_PG_PORT:-55432}"
PG_USER="hyperlaw"
PG_PASSWORD="hyperlaw-test-password"

say() { echo "test-services: $*" >&2; }

# the dashboard's browser tests drive Debian's Chromium headless (never a downloaded browser)
if [ "${1:-start}" = start ] && ! command -v chromium >/dev/null 2>&1; then
    say "installing Chromium from Debian's packages"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2
fi

find_pg_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if ! PG_BIN="$(find_pg_bin)"; then
    say "installing PostgreSQL from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq postgresql >&2
    PG_BIN="$(find_pg_bin)"
fi

# root cannot run the server: run it as `postgres` (created by the Debian package)
if [ "$(id -u)" -eq 0 ]; then
    RUN_AS=(runuser -u postgres --)
    OWNER="postgres"
else
    RUN_AS=()
    OWNER="$(id -un)"
fi

mkdir -p "$PG_DIR"
chown "$OWNER" "$PG_DIR"
chmod 700 "$PG_DIR"
DATA="$PG_DIR/data"
LOG="$PG_DIR/server.log"

if [ ! -f "$DATA/PG_VERSION" ]; then
    say "creating a cluster in $DATA"
    PWFILE="$PG_DIR/.pw"
    printf '%s\n' "$PG_PASSWORD" > "$PWFILE"
    chown "$OWNER" "$PWFILE"
    "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$DATA" -U "$PG_USER" --pwfile="$PWFILE" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 >/dev/null
    rm -f "$PWFILE"
    cat >> "$DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 400
shared_buffers = 128MB
EOF
fi

case "${1:-start}" in
    start) ;;
    restart-postgres)
        "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -m fast restart >/dev/null
        exit 0 ;;
    restart-postgres-immediate)  # no shutdown checkpoint, as after a crash of the server
        "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -m immediate restart >/dev/null
        exit 0 ;;
    stop-postgres)
        "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -w -t 60 -m fast stop >/dev/null
        exit 0 ;;
    *) say "unknown command $1 (use start, restart-postgres or stop-postgres)"; exit 2 ;;
esac

if ! "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    touch "$LOG" && chown "$OWNER" "$LOG"
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null
fi

echo "postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
