#!/usr/bin/env bash
# Start the services the tests use, and print the PostgreSQL URL for HYPERLAW_TEST_POSTGRES.
# Also installs Debian's chromium for the dashboard's browser tests when it is missing.
#
#   export HYPERLAW_TEST_POSTGRES="$(scripts/test-services.sh)"
#   scripts/test-services.sh run python -m pytest   # start, run, stop what it started
#   scripts/test-services.sh restart-postgres   # fast restart (the chaos tests use it)
#   scripts/test-services.sh restart-postgres-immediate   # as after a crash of the server
#   scripts/test-services.sh stop-postgres
#
# Installs Debian's PostgreSQL server if it is missing (without recommended packages), then
# runs a private cluster (its own data directory, port and socket directory; nothing shared
# with a system server or another checkout) as the `postgres` user when run as root.
# Idempotent: a running cluster is reused. Progress goes to stderr; stdout carries only the URL.
# `run CMD...` starts the cluster, runs CMD with HYPERLAW_TEST_POSTGRES set, stops the server
# if it was not running before, and exits with CMD's status.
#
# Settings (environment): HYPERLAW_PG_DIR (data and logs; default .test-services/pg in this
# checkout, or a directory in $TMPDIR named after the checkout when the `postgres` user cannot
# reach the checkout), HYPERLAW_PG_PORT (default: a free port chosen when the cluster is
# created, then kept in its postgresql.conf).
set -euo pipefail

CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_USER="hyperlaw"
PG_PASSWORD="hyperlaw-test-password"
SOCKET_PATH_MAX=107  # bytes in a unix socket path (sun_path, less its final NUL)

say() { echo "test-services: $*" >&2; }

COMMAND="${1:-start}"

apt_install() {
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}

# the dashboard's browser tests drive Debian's Chromium headless (never a downloaded browser);
# its recommended packages (udev, upower, Mesa, a printer GUI...) are not needed headless
if { [ "$COMMAND" = start ] || [ "$COMMAND" = run ]; } && ! command -v chromium >/dev/null 2>&1
then
    say "installing Chromium from Debian's packages"
    apt_install chromium
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
    apt_install postgresql
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

# One cluster per checkout: inside it when the server's user can get there, else in $TMPDIR
# under a name derived from the checkout's path.
default_pg_dir() {
    local inside="$CHECKOUT/.test-services/pg"
    if [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$CHECKOUT"; then
        echo "$inside"
    else
        echo "${TMPDIR:-/tmp}/hyperlaw-test-pg-$(printf '%s' "$CHECKOUT" | cksum | cut -d' ' -f1)"
    fi
}

PG_DIR="${HYPERLAW_PG_DIR:-$(default_pg_dir)}"
DATA="$PG_DIR/data"
LOG="$PG_DIR/server.log"
CONF="$DATA/postgresql.conf"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port no server listens on, starting from one derived from the data directory's path.
free_port() {
    local hash port tries
    hash="$(printf '%s' "$PG_DIR" | cksum | cut -d' ' -f1)"
    for tries in $(seq 0 199); do
        port=$(( 20000 + (hash + tries) % 20000 ))
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    say "no free TCP port found in 20000-39999; set HYPERLAW_PG_PORT"
    return 1
}

recorded_port() { sed -n 's/^port = \([0-9]*\).*/\1/p' "$CONF" | tail -n 1; }

mkdir -p "$PG_DIR"
chown "$OWNER" "$PG_DIR"
chmod 700 "$PG_DIR"

if [ ! -f "$DATA/PG_VERSION" ]; then
    say "creating a cluster in $DATA"
    PWFILE="$PG_DIR/.pw"
    printf '%s\n' "$PG_PASSWORD" > "$PWFILE"
    chown "$OWNER" "$PWFILE"
    "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$DATA" -U "$PG_USER" --pwfile="$PWFILE" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 >/dev/null
    rm -f "$PWFILE"
    PORT="${HYPERLAW_PG_PORT:-$(free_port)}"
    # the tests connect over TCP; a socket only where its path fits
    SOCKET_DIR="$PG_DIR"
    if [ $(( ${#PG_DIR} + ${#PORT} + 10 )) -gt "$SOCKET_PATH_MAX" ]; then
        say "no unix socket: $PG_DIR/.s.PGSQL.$PORT would exceed $SOCKET_PATH_MAX bytes"
        SOCKET_DIR=""
    fi
    cat >> "$CONF" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKET_DIR'
max_connections = 400
shared_buffers = 128MB
EOF
fi

PG_PORT="$(recorded_port)"
if [ -n "${HYPERLAW_PG_PORT:-}" ] && [ "$HYPERLAW_PG_PORT" != "$PG_PORT" ]; then
    say "moving the cluster in $DATA to port $HYPERLAW_PG_PORT (restart it if it runs)"
    echo "port = $HYPERLAW_PG_PORT" >> "$CONF"
    PG_PORT="$HYPERLAW_PG_PORT"
fi
URL="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"

pg_ctl() { "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" "$@"; }
is_running() { pg_ctl status >/dev/null 2>&1; }

start_postgres() {
    if ! is_running; then
        say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
        touch "$LOG" && chown "$OWNER" "$LOG"
        pg_ctl -l "$LOG" -w -t 60 start >/dev/null
    fi
}

# Start, run "$@" with the URL in HYPERLAW_TEST_POSTGRES, stop the server if this started it
# (also when "$@" fails or is interrupted); exit with the status of "$@".
run_with_postgres() {
    if ! is_running; then
        trap 'say "stopping PostgreSQL on 127.0.0.1:$PG_PORT"; pg_ctl -w -t 60 -m fast stop \
              >/dev/null || true' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
    fi
    start_postgres
    local status=0
    HYPERLAW_TEST_POSTGRES="$URL" "$@" || status=$?
    exit "$status"
}

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
    run)
        shift
        [ "$#" -gt 0 ] || { say "run needs a command, e.g. run python -m pytest"; exit 2; }
        run_with_postgres "$@" ;;
    *) say "unknown command $1 (use start, run, restart-postgres, restart-postgres-immediate" \
           "or stop-postgres)"; exit 2 ;;
esac

start_postgres
echo "$URL"
