#!/usr/bin/env bash
# Install and run the telecare gateway's local development services on Debian bookworm:
#
#   * Mosquitto 2.0 on 127.0.0.1:$TELECARE_MQTT_PORT (default 18830), config generated
#     from deploy/mosquitto/telecare-dev.conf.in;
#   * PostgreSQL 15 + TimescaleDB on 127.0.0.1:$TELECARE_PG_PORT (default 54330), its own
#     cluster (not the Debian "main" cluster), role/database "telecare" (password
#     "telecare"; loopback-only development cluster). TimescaleDB is built from the
#     Debian trixie source package when it is not installed (bookworm has no package).
#
# Everything the services write lives in $TELECARE_STATE_DIR (default
# /var/lib/telecare-dev): not in the repository, which the postgres/mosquitto users may
# not be able to traverse. Must run as root (apt-get, runuser). No systemd needed.
#
# Usage: scripts/services.sh <command>
#   ensure      install whatever is missing, then start whatever is not running
#   install     install packages, build TimescaleDB, initialise the cluster (no start)
#   start       start both services (they must be installed) and wait until they answer
#   stop        stop both services
#   status      report both; exit 0 only if both answer
#   pg-start | pg-stop | mqtt-start | mqtt-stop     one service only
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO_ROOT="$(dirname "$(dirname "$SELF")")"

STATE_DIR="${TELECARE_STATE_DIR:-/var/lib/telecare-dev}"
MQTT_PORT="${TELECARE_MQTT_PORT:-18830}"
PG_PORT="${TELECARE_PG_PORT:-54330}"

LOG_DIR="$STATE_DIR/log"                 # root-owned: install/build logs
MQ_DIR="$STATE_DIR/mosquitto"            # owned by the mosquitto user
MQ_CONF="$MQ_DIR/mosquitto.conf"
MQ_PID="$MQ_DIR/mosquitto.pid"
MQ_LOG="$MQ_DIR/mosquitto.log"
MQ_DATA="$MQ_DIR/data"
MQ_TEMPLATE="$REPO_ROOT/deploy/mosquitto/telecare-dev.conf.in"

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG="$PG_BIN/pg_config"
PG_DATA="$STATE_DIR/pg15"                # owned by postgres
PG_RUN="$STATE_DIR/pg-run"               # unix socket directory, owned by postgres
PG_LOGDIR="$STATE_DIR/pg-log"            # owned by postgres
PG_LOG="$PG_LOGDIR/postgresql.log"
PG_USER=postgres
DB_NAME=telecare
DB_ROLE=telecare
DB_PASSWORD=telecare

BUILD_DIR="$STATE_DIR/build"
START_TIMEOUT_S="${TELECARE_START_TIMEOUT_S:-60}"

# --------------------------------------------------------------------------------------
say() { echo "services: $*"; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

# Print the last lines of a log file to stderr (for error reports).
log_tail() {
    local file="$1" lines="${2:-25}"
    if [[ -r "$file" ]]; then
        echo "---- last $lines lines of $file ----" >&2
        tail -n "$lines" "$file" >&2 || true
        echo "----" >&2
    fi
}

# run_logged LOGFILE DESCRIPTION CMD...: run CMD with all output appended to LOGFILE;
# on failure report what failed and where the log is, and exit non-zero.
run_logged() {
    local log="$1" what="$2"
    shift 2
    mkdir -p "$(dirname "$log")"
    {
        echo
        echo "==== $(date -Is) $what"
        echo "+ $*"
    } >>"$log"
    # fd 9 is the services.sh lock: daemons started by package scripts must not keep it.
    if ! "$@" >>"$log" 2>&1 </dev/null 9>&-; then
        log_tail "$log" 30
        die "$what failed (full log: $log)"
    fi
}

require_root() {
    [[ "$(id -u)" -eq 0 ]] || die "must run as root (needs apt-get and runuser)"
}

as_postgres() { runuser -u "$PG_USER" -- "$@"; }

state_dirs() {
    mkdir -p "$STATE_DIR" "$LOG_DIR"
    chmod 755 "$STATE_DIR"
}

# --------------------------------------------------------------------------------------
# apt
APT_UPDATED=0
APT_LOG() { echo "$LOG_DIR/apt.log"; }
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
          -o Dpkg::Options::=--force-confold)

apt_update_once() {
    state_dirs
    if [[ "$APT_UPDATED" -eq 0 ]]; then
        run_logged "$(APT_LOG)" "apt-get update" \
            apt-get -q -o DPkg::Lock::Timeout=600 update
        APT_UPDATED=1
    fi
}

apt_install() {
    apt_update_once
    run_logged "$(APT_LOG)" "apt-get install $*" \
        env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install "$@"
}

# "pkg=version" for the version of INSTALLED_PKG if apt can still fetch it, else "pkg".
# Keeps -dev packages at the installed server's version instead of upgrading the server.
matching_version() {
    local pkg="$1" installed_pkg="$2" ver
    ver="$(dpkg-query -W -f='${Version}' "$installed_pkg" 2>/dev/null || true)"
    if [[ -n "$ver" ]] && apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' \
            | grep -qxF "$ver"; then
        echo "$pkg=$ver"
    else
        echo "$pkg"
    fi
}

# Does anything accept TCP connections on 127.0.0.1:PORT?
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# --------------------------------------------------------------------------------------
# Mosquitto
mqtt_install() {
    if command -v mosquitto >/dev/null 2>&1 && command -v mosquitto_pub >/dev/null 2>&1 \
            && command -v mosquitto_sub >/dev/null 2>&1; then
        say "mosquitto already installed"
    else
        say "installing mosquitto + mosquitto-clients (apt log: $(APT_LOG))..."
        # The Debian package may start its own daemon on 1883 (not under systemd it usually
        # does not); we leave that alone and run our own instance on $MQTT_PORT.
        apt_install mosquitto mosquitto-clients
        say "mosquitto installed: $(mosquitto -h 2>/dev/null | head -n1 || true)"
    fi
    id mosquitto >/dev/null 2>&1 || die "user 'mosquitto' does not exist (the mosquitto package creates it)"
    mqtt_configure
}

MQ_CONF_CHANGED=0

# Write $MQ_CONF from the template (only when it changed) and fix ownership.
mqtt_configure() {
    state_dirs
    [[ -r "$MQ_TEMPLATE" ]] || die "missing template $MQ_TEMPLATE"
    mkdir -p "$MQ_DIR" "$MQ_DATA"
    local tmp
    tmp="$(mktemp "$MQ_DIR/.mosquitto.conf.XXXXXX")"
    sed -e "s|@MQTT_PORT@|$MQTT_PORT|g" \
        -e "s|@MOSQUITTO_DIR@|$MQ_DIR|g" \
        -e "s|@PERSISTENCE_DIR@|$MQ_DATA|g" \
        -e "s|@PID_FILE@|$MQ_PID|g" \
        -e "s|@LOG_FILE@|$MQ_LOG|g" \
        "$MQ_TEMPLATE" >"$tmp"
    if grep -q '@[A-Z_]*@' "$tmp"; then
        rm -f "$tmp"
        die "unsubstituted placeholder in $MQ_TEMPLATE"
    fi
    if [[ -f "$MQ_CONF" ]] && cmp -s "$tmp" "$MQ_CONF"; then
        rm -f "$tmp"
    else
        chmod 644 "$tmp"
        mv -f "$tmp" "$MQ_CONF"
        if mqtt_running; then
            MQ_CONF_CHANGED=1
            say "mosquitto config changed ($MQ_CONF); restart with: $0 mqtt-stop && $0 mqtt-start"
        fi
    fi
    # Mosquitto drops privileges to 'mosquitto' when started as root: it must be able to
    # write the persistence database, and to remove its pid file on exit.
    chown -R mosquitto: "$MQ_DIR"
}

# PID of our broker, if it is running.
mqtt_pid() {
    local pid
    [[ -r "$MQ_PID" ]] || return 1
    pid="$(tr -dc '0-9' <"$MQ_PID")"
    [[ -n "$pid" ]] || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == mosquitto ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$MQ_CONF" || return 1
    echo "$pid"
}

mqtt_running() { mqtt_pid >/dev/null; }

# Is PID a live process? (kill -0 also succeeds for a zombie that is not reaped yet.)
proc_alive() {
    local state
    state="$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z ]]
}

# Does the broker answer a subscribe on its port? ($SYS/broker/version is retained.)
mqtt_answers() {
    command -v mosquitto_sub >/dev/null 2>&1 || return 1
    # shellcheck disable=SC2016  # $SYS is a literal MQTT topic
    timeout 5 mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -i "telecare-services-probe-$$" \
        -t '$SYS/broker/version' -C 1 -W 3 >/dev/null 2>&1
}

mqtt_start() {
    command -v mosquitto >/dev/null 2>&1 || die "mosquitto is not installed: run '$0 install' first"
    mqtt_configure
    if mqtt_running; then
        if mqtt_answers; then
            say "mosquitto already running on 127.0.0.1:$MQTT_PORT (pid $(mqtt_pid))"
            return 0
        fi
        if [[ "$MQ_CONF_CHANGED" -eq 1 ]]; then
            die "mosquitto (pid $(mqtt_pid)) runs with an older config and does not answer on port $MQTT_PORT: run '$0 mqtt-stop' then '$0 mqtt-start'"
        fi
        say "mosquitto is running (pid $(mqtt_pid)) but not answering yet; waiting..."
    else
        if port_open "$MQTT_PORT"; then
            die "port 127.0.0.1:$MQTT_PORT is already in use by another process (not the broker from $MQ_CONF)"
        fi
        rm -f "$MQ_PID"
        say "starting mosquitto on 127.0.0.1:$MQTT_PORT..."
        local out
        if ! out="$(mosquitto -d -c "$MQ_CONF" 2>&1 9>&-)"; then
            echo "$out" >&2
            log_tail "$MQ_LOG"
            die "mosquitto failed to start (config: $MQ_CONF, log: $MQ_LOG)"
        fi
    fi
    local t0=$SECONDS
    until mqtt_answers; do
        if ((SECONDS - t0 >= START_TIMEOUT_S)); then
            log_tail "$MQ_LOG"
            die "mosquitto did not answer on 127.0.0.1:$MQTT_PORT within ${START_TIMEOUT_S}s (log: $MQ_LOG)"
        fi
        if ! mqtt_running && ((SECONDS - t0 >= 2)); then
            log_tail "$MQ_LOG"
            die "mosquitto exited right after starting (log: $MQ_LOG)"
        fi
        sleep 0.2
    done
    say "mosquitto running on 127.0.0.1:$MQTT_PORT (pid $(mqtt_pid || echo '?'), log: $MQ_LOG)"
}

mqtt_stop() {
    local pid
    if ! pid="$(mqtt_pid)"; then
        say "mosquitto not running"
        rm -f "$MQ_PID"
        return 0
    fi
    kill -TERM "$pid"
    local i
    for ((i = 0; i < 100; i++)); do
        proc_alive "$pid" || break
        sleep 0.1
    done
    if proc_alive "$pid"; then
        say "mosquitto (pid $pid) did not exit in 10s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$MQ_PID"
    say "mosquitto stopped"
}

mqtt_status() {
    if mqtt_answers; then
        if mqtt_running; then
            say "mosquitto: answering on 127.0.0.1:$MQTT_PORT (pid $(mqtt_pid))"
        else
            say "mosquitto: something answers on 127.0.0.1:$MQTT_PORT, but not the broker from $MQ_CONF"
        fi
        return 0
    fi
    if mqtt_running; then
        say "mosquitto: running (pid $(mqtt_pid)) but NOT answering on 127.0.0.1:$MQTT_PORT (log: $MQ_LOG)"
    else
        say "mosquitto: not running (port $MQTT_PORT)"
    fi
    return 1
}

# --------------------------------------------------------------------------------------
# PostgreSQL + TimescaleDB
pg_install() {
    if [[ -x "$PG_BIN/postgres" && -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_isready" && -x "$PG_BIN/psql" ]]; then
        say "postgresql-15 already installed"
    else
        say "installing postgresql-15 (apt log: $(APT_LOG))..."
        apt_install postgresql-15 postgresql-client-15
    fi
    id "$PG_USER" >/dev/null 2>&1 || die "user '$PG_USER' does not exist (the postgresql packages create it)"
    timescaledb_install
    pg_init
}

timescaledb_installed() {
    [[ -x "$PG_CONFIG" ]] || return 1
    local share lib
    share="$("$PG_CONFIG" --sharedir)" lib="$("$PG_CONFIG" --pkglibdir)"
    [[ -f "$share/extension/timescaledb.control" && -f "$lib/timescaledb.so" ]]
}

# The Debian mirror this machine's own apt sources use (for the trixie source package).
debian_mirror() {
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri="$(awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' \
            /etc/apt/sources.list.d/*.sources | grep -E '/debian/?$' | head -n1 || true)"
    fi
    if [[ -z "$uri" && -r /etc/apt/sources.list ]]; then
        uri="$(awk '$1=="deb" || $1=="deb-src" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp):/) { print $i; break } }' \
            /etc/apt/sources.list | grep -E '/debian/?$' | head -n1 || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

timescaledb_install() {
    if timescaledb_installed; then
        say "timescaledb already installed ($("$PG_CONFIG" --sharedir)/extension/timescaledb.control)"
        return 0
    fi
    local blog="$LOG_DIR/timescaledb-build.log"
    state_dirs
    : >"$blog"

    # Build dependencies. The -dev packages are kept at the installed server's version
    # where the mirror still has it, so installing them does not upgrade the server.
    local -a deps=()
    dpkg -s dpkg-dev >/dev/null 2>&1 || deps+=(dpkg-dev)
    dpkg -s cmake >/dev/null 2>&1 || deps+=(cmake)
    dpkg -s gcc >/dev/null 2>&1 || deps+=(gcc)
    dpkg -s make >/dev/null 2>&1 || deps+=(make)
    dpkg -s libssl-dev >/dev/null 2>&1 || deps+=(libssl-dev)
    if ! dpkg -s postgresql-server-dev-15 >/dev/null 2>&1; then
        apt_update_once
        deps+=("$(matching_version postgresql-server-dev-15 postgresql-15)")
        dpkg -s libpq-dev >/dev/null 2>&1 || deps+=("$(matching_version libpq-dev libpq5)")
    fi
    if ((${#deps[@]})); then
        say "installing timescaledb build dependencies: ${deps[*]} (apt log: $(APT_LOG))..."
        apt_install "${deps[@]}"
    else
        say "timescaledb build dependencies already installed"
    fi

    # A private apt configuration with only the trixie deb-src line: keeps trixie out of
    # the machine's own sources, package lists and caches.
    local mirror aptdir
    mirror="$(debian_mirror)"
    aptdir="$BUILD_DIR/apt"
    rm -rf "$BUILD_DIR"
    mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$BUILD_DIR/src"
    echo "deb-src $mirror trixie main" >"$aptdir/sources.list"
    local -a aopt=(-o "Dir::Etc::SourceList=$aptdir/sources.list"
                   -o "Dir::Etc::SourceParts=/dev/null"
                   -o "Dir::State::Lists=$aptdir/lists"
                   -o "Dir::Cache=$aptdir/cache"
                   -o "APT::Sandbox::User=root")
    say "fetching timescaledb source from $mirror trixie (log: $blog)..."
    run_logged "$blog" "apt-get update (private trixie deb-src list)" apt-get -q "${aopt[@]}" update
    (cd "$BUILD_DIR/src" && run_logged "$blog" "apt-get source timescaledb (trixie)" \
        apt-get -q "${aopt[@]}" source timescaledb)

    local src ver
    src="$(find "$BUILD_DIR/src" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n1)"
    [[ -n "$src" && -x "$src/bootstrap" ]] || { log_tail "$blog"; die "no timescaledb source tree with ./bootstrap under $BUILD_DIR/src (log: $blog)"; }
    ver="$(sed -n 's/^version *= *//p' "$src/version.config" 2>/dev/null | head -n1)"
    ver="${ver:-${src##*/timescaledb-}}"
    say "building timescaledb $ver from trixie source (log: $blog)..."
    local t0=$SECONDS
    (cd "$src" && run_logged "$blog" "timescaledb bootstrap (cmake)" \
        env BUILD_FORCE_REMOVE=true ./bootstrap -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF \
            -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$PG_CONFIG")
    run_logged "$blog" "timescaledb make" make -C "$src/build" -j"$(nproc)"
    run_logged "$blog" "timescaledb make install" make -C "$src/build" install
    timescaledb_installed || { log_tail "$blog"; die "timescaledb build finished but timescaledb.control/.so are not installed (log: $blog)"; }
    say "timescaledb $ver built and installed in $((SECONDS - t0))s"
    rm -rf "$BUILD_DIR"
}

# Can the postgres user reach the state directory? (e.g. not under a 0700 home)
pg_check_traverse() {
    as_postgres test -x "$STATE_DIR" -a -r "$STATE_DIR" \
        || die "user $PG_USER cannot traverse $STATE_DIR: choose a TELECARE_STATE_DIR outside private directories"
}

# Config that services.sh owns; rewritten every time so settings (port, ...) follow the env.
pg_write_config() {
    local conf="$PG_DATA/telecare-dev.conf" hba="$PG_DATA/pg_hba.conf" tmp
    tmp="$(mktemp)"
    cat >"$tmp" <<EOF
# Written by scripts/services.sh; rewritten on every start. Do not edit.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 200
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
timescaledb.max_background_workers = 8
max_worker_processes = 16
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
    if ! cmp -s "$tmp" "$conf"; then
        install -o "$PG_USER" -g "$PG_USER" -m 600 "$tmp" "$conf"
    fi
    cat >"$tmp" <<'EOF'
# Written by scripts/services.sh; rewritten on every start. Do not edit.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  peer
host    all       all   127.0.0.1/32   scram-sha-256
host    all       all   ::1/128        scram-sha-256
EOF
    if ! cmp -s "$tmp" "$hba"; then
        install -o "$PG_USER" -g "$PG_USER" -m 600 "$tmp" "$hba"
    fi
    rm -f "$tmp"
    grep -qxF "include_if_exists = 'telecare-dev.conf'" "$PG_DATA/postgresql.conf" \
        || echo "include_if_exists = 'telecare-dev.conf'" >>"$PG_DATA/postgresql.conf"
}

pg_dirs() {
    state_dirs
    mkdir -p "$PG_DATA" "$PG_RUN" "$PG_LOGDIR"
    chown "$PG_USER:" "$PG_DATA" "$PG_RUN" "$PG_LOGDIR"
    chmod 700 "$PG_DATA"
    chmod 755 "$PG_RUN" "$PG_LOGDIR"
    pg_check_traverse
}

pg_init() {
    pg_dirs
    if [[ -f "$PG_DATA/PG_VERSION" ]]; then
        say "postgresql cluster already initialised ($PG_DATA)"
    else
        say "initialising postgresql cluster in $PG_DATA..."
        run_logged "$LOG_DIR/initdb.log" "initdb $PG_DATA" \
            runuser -u "$PG_USER" -- "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" \
                --encoding=UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256
    fi
    pg_write_config
}

# PID of our postmaster, if it is alive (pg_ctl status would also count a zombie that
# the container's init has not reaped yet after kill -9).
pg_pid() {
    local pid
    [[ -r "$PG_DATA/postmaster.pid" ]] || return 1
    pid="$(head -n1 "$PG_DATA/postmaster.pid" | tr -dc '0-9')"
    [[ -n "$pid" ]] && proc_alive "$pid" || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]] || return 1
    echo "$pid"
}

pg_running() { pg_pid >/dev/null; }

pg_answers() {
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 3 >/dev/null 2>&1
}

# psql as the postgres superuser over the unix socket (peer auth).
pg_psql() {
    local db="$1"
    shift
    as_postgres "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -d "$db" "$@"
}

# Role, database and extension (idempotent, a few quick queries).
pg_bootstrap() {
    local blog="$LOG_DIR/pg-bootstrap.log"
    run_logged "$blog" "create role $DB_ROLE" pg_psql postgres -c "
        DO \$\$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_ROLE') THEN
            CREATE ROLE $DB_ROLE LOGIN SUPERUSER PASSWORD '$DB_PASSWORD';
          END IF;
        END \$\$;"
    if [[ "$(pg_psql postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" 2>/dev/null)" != 1 ]]; then
        run_logged "$blog" "create database $DB_NAME" \
            pg_psql postgres -c "CREATE DATABASE $DB_NAME OWNER $DB_ROLE"
        say "created role/database $DB_ROLE/$DB_NAME"
    fi
    run_logged "$blog" "create extension timescaledb in $DB_NAME" \
        pg_psql "$DB_NAME" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS timescaledb"
}

pg_start() {
    [[ -x "$PG_BIN/postgres" ]] || die "postgresql-15 is not installed: run '$0 install' first"
    [[ -f "$PG_DATA/PG_VERSION" ]] || die "no cluster in $PG_DATA: run '$0 install' first"
    timescaledb_installed || die "timescaledb is not installed: run '$0 install' first"
    pg_dirs
    if pg_running; then
        local running_port
        running_port="$(sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9')"
        if [[ -n "$running_port" && "$running_port" != "$PG_PORT" ]]; then
            die "the cluster in $PG_DATA is running on port $running_port, not $PG_PORT: run '$0 pg-stop' then '$0 pg-start'"
        fi
    fi
    pg_write_config
    if pg_running && pg_answers; then
        say "postgresql already running on 127.0.0.1:$PG_PORT"
        pg_bootstrap
        return 0
    fi
    if pg_running; then
        say "postgresql is running but not answering yet on 127.0.0.1:$PG_PORT; waiting..."
    elif port_open "$PG_PORT"; then
        die "port 127.0.0.1:$PG_PORT is already in use by another process (our cluster $PG_DATA is not running)"
    else
        say "starting postgresql on 127.0.0.1:$PG_PORT..."
    fi
    # Start (again) whenever no postmaster is alive, until pg_isready answers: after a
    # kill -9 the old backends can hold the shared memory for a few seconds, and the
    # first attempts then fail; they are retried until the timeout.
    local t0=$SECONDS last_try=-100
    until pg_answers; do
        if ((SECONDS - t0 >= START_TIMEOUT_S)); then
            log_tail "$LOG_DIR/pg_ctl.log" 5
            log_tail "$PG_LOG"
            die "postgresql did not answer pg_isready on 127.0.0.1:$PG_PORT within ${START_TIMEOUT_S}s (log: $PG_LOG)"
        fi
        if ! pg_running && ((SECONDS - last_try >= 2)); then
            last_try=$SECONDS
            # -W: do not wait here; we wait for pg_isready.
            as_postgres "$PG_BIN/pg_ctl" start -W -D "$PG_DATA" -l "$PG_LOG" >>"$LOG_DIR/pg_ctl.log" 2>&1 9>&- || true
        fi
        sleep 0.2
    done
    pg_bootstrap
    say "postgresql running on 127.0.0.1:$PG_PORT (data: $PG_DATA, log: $PG_LOG)"
}

pg_stop() {
    if ! pg_running; then
        say "postgresql not running"
        return 0
    fi
    if ! as_postgres "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >>"$LOG_DIR/pg_ctl.log" 2>&1; then
        log_tail "$LOG_DIR/pg_ctl.log" 10
        log_tail "$PG_LOG"
        die "pg_ctl stop failed (log: $PG_LOG)"
    fi
    say "postgresql stopped"
}

pg_status() {
    if pg_answers; then
        if pg_running; then
            say "postgresql: answering on 127.0.0.1:$PG_PORT (data: $PG_DATA)"
        else
            say "postgresql: something answers on 127.0.0.1:$PG_PORT, but not the cluster in $PG_DATA"
        fi
        return 0
    fi
    if pg_running; then
        say "postgresql: running but NOT answering on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
    else
        say "postgresql: not running (port $PG_PORT)"
    fi
    return 1
}

# --------------------------------------------------------------------------------------
usage() {
    sed -n '/^# Usage:/,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

main() {
    [[ $# -eq 1 ]] || usage
    local cmd="$1"
    # The postgres user may not be able to read the caller's working directory.
    cd /
    case "$cmd" in
        ensure | install | start | stop | pg-start | pg-stop | mqtt-start | mqtt-stop) require_root ;;
        status) ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
    if [[ "$cmd" != status ]]; then
        # One services.sh at a time per state directory (e.g. parallel test sessions).
        # Daemons are started with fd 9 closed so they do not inherit the lock.
        state_dirs
        exec 9>"$STATE_DIR/.services.lock"
        if ! flock -n 9; then
            say "waiting for another services.sh on $STATE_DIR..."
            flock -w 1200 9 || die "timed out waiting for the lock $STATE_DIR/.services.lock"
        fi
    fi
    case "$cmd" in
        ensure) mqtt_install; pg_install; mqtt_start; pg_start ;;
        install) mqtt_install; pg_install ;;
        start) mqtt_start; pg_start ;;
        stop) mqtt_stop; pg_stop ;;
        status)
            local rc=0
            mqtt_status || rc=1
            pg_status || rc=1
            return "$rc"
            ;;
        pg-start) pg_start ;;
        pg-stop) pg_stop ;;
        mqtt-start) mqtt_start ;;
        mqtt-stop) mqtt_stop ;;
    esac
}

main "$@"
