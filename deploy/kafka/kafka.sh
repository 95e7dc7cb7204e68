#!/usr/bin/env bash
# Single-node Apache Kafka 4.x (KRaft, broker+controller) without Docker,
# run from the jars that deploy/kafka/pom.xml pins on Maven Central.
#
# Usage: deploy/kafka/kafka.sh COMMAND [ARGS]
#   start [PORT]   start in the background (free port if none given), wait until
#                  it serves, print the bootstrap address 127.0.0.1:PORT as the
#                  last line of stdout; if already running, just print it
#   stop           stop it (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT) and wait
#   status         print the bootstrap address and exit 0 if it runs, else exit 1
#   run [PORT]     prepare, then exec the broker in the foreground (pid = this
#                  process; used by tests/support/apache_kafka.py)
#   jars           only make sure deploy/kafka/lib/ holds the pinned jars
#   clean          stop, then delete the data dir
#   tool CLASS ... run a Kafka tool class against the jars, e.g.
#                  tool org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:PORT --list
#
# Environment:
#   KAFKA_DATA_DIR         data dir (default: <repo>/.data/kafka); holds the
#                          rendered server.properties, kafka.pid, bootstrap,
#                          logs/server.log, kafka.out (JVM stdout/stderr), data/
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default: a free one)
#   KAFKA_HEAP_OPTS        default: -Xms128m -Xmx512m
#   KAFKA_JVM_PERFORMANCE_OPTS  GC/JIT flags (default: G1 as in Kafka's own scripts)
#   KAFKA_JVM_OPTS         extra JVM flags, appended
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to serve (default 120)
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (default 30)
#   JAVA, MVN, PYTHON      commands to use (default: java, mvn, python3)
#
# Diagnostics go to stderr; only the bootstrap address goes to stdout.
set -euo pipefail

KAFKA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KAFKA_DIR/../.." && pwd)"
LIB_DIR="$KAFKA_DIR/lib"
POM="$KAFKA_DIR/pom.xml"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"
PYTHON="${PYTHON:-python3}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
PERF_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}"
READY_LINE="Kafka Server started"

DATA_DIR="$(realpath -m "${KAFKA_DATA_DIR:-$REPO_ROOT/.data/kafka}")"
PIDFILE="$DATA_DIR/kafka.pid"
BOOTFILE="$DATA_DIR/bootstrap"
PROPS="$DATA_DIR/server.properties"
LOG_DIR="$DATA_DIR/logs"
SERVER_LOG="$LOG_DIR/server.log"
OUT="$DATA_DIR/kafka.out"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- jars ------------------------------------------------------------------

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

ensure_jars() {
    local stamp="$LIB_DIR/.pom.sha256" want
    want="$(pom_hash)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    mkdir -p "$LIB_DIR"
    # Serialise concurrent starts (several test sessions at once).
    exec 9>"$LIB_DIR/.lock"
    flock 9
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        command -v "$MVN" >/dev/null || die "'$MVN' not found: Maven is needed once to fetch the Kafka jars"
        log "fetching Kafka jars into $LIB_DIR (pom changed or first run)..."
        rm -f "$LIB_DIR"/*.jar "$stamp"
        if ! "$MVN" -B -q -f "$POM" dependency:copy-dependencies >"$LIB_DIR/.mvn.log" 2>&1; then
            cat "$LIB_DIR/.mvn.log" >&2
            die "mvn dependency:copy-dependencies failed"
        fi
        printf '%s\n' "$want" >"$stamp"
    fi
    flock -u 9
    exec 9>&-
}

# --- process ----------------------------------------------------------------

# The pid in the pidfile, if that process is alive and is our broker.
running_pid() {
    local pid
    [[ -f "$PIDFILE" ]] || return 1
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -F -- "$PROPS" >/dev/null || return 1
    printf '%s\n' "$pid"
}

# Alive and not a zombie: a broker started by `start` is reparented to PID 1,
# which may reap it late, and kill -0 succeeds on a zombie.
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    if command -v "$PYTHON" >/dev/null 2>&1; then
        "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        port_open "$p" || { echo "$p"; return; }
    done
    die "no free port found"
}

# --- config, storage, command line ----------------------------------------

render_config() {
    local port="$1" cport="$2" text
    text="$(<"$KAFKA_DIR/server.properties")"
    text="${text//@PORT@/"$port"}"
    text="${text//@CONTROLLER_PORT@/"$cport"}"
    text="${text//@DATA_DIR@/"$DATA_DIR"}"
    printf '%s\n' "$text" >"$PROPS"
}

# Fills JVM (java + flags + classpath). Argument "tool": log WARN+ to stderr
# instead of to the broker's log file.
jvm_base() {
    local logging=("-Dlog4j2.configurationFile=$KAFKA_DIR/log4j2.xml" "-Dkafka.logs.dir=$LOG_DIR")
    if [[ "${1:-}" == tool ]]; then logging=(-Dlog4j2.level=WARN); fi
    # shellcheck disable=SC2206  # word splitting of the *_OPTS is intended
    JVM=("$JAVA" $HEAP_OPTS
        $PERF_OPTS -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
        "${logging[@]}"
        ${KAFKA_JVM_OPTS:-}
        -cp "$LIB_DIR/*")
}

format_storage() {
    if [[ -f "$DATA_DIR/data/meta.properties" ]]; then
        return 0
    fi
    local cluster_id
    # A Kafka Uuid: 16 random bytes, base64url without padding.
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    jvm_base
    # Its chatter goes to kafka.out; shown only if it fails.
    if ! "${JVM[@]}" kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$PROPS" >>"$OUT" 2>&1; then
        tail -n 20 "$OUT" >&2
        die "formatting $DATA_DIR/data failed"
    fi
}

# Sets PORT, renders config, formats storage; fills BROKER (the java command).
prepare() {
    PORT="${1:-}"
    if [[ -z "$PORT" ]]; then PORT="$(free_port)"; fi
    [[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port: $PORT"
    local cport="${KAFKA_CONTROLLER_PORT:-}"
    if [[ -z "$cport" ]]; then
        cport="$(free_port)"
        while [[ "$cport" == "$PORT" ]]; do cport="$(free_port)"; done
    fi
    ! port_open "$PORT" || die "port $PORT is already in use"
    ensure_jars
    mkdir -p "$DATA_DIR" "$LOG_DIR"
    render_config "$PORT" "$cport"
    format_storage
    jvm_base
    BROKER=("${JVM[@]}" kafka.Kafka "$PROPS")
}

# --- commands ----------------------------------------------------------------

cmd_start() {
    local pid
    if pid="$(running_pid)"; then
        local current
        current="$(cat "$BOOTFILE" 2>/dev/null || true)"
        if [[ -n "${1:-}" && "$current" != "127.0.0.1:$1" ]]; then
            die "already running (pid $pid) at $current, not on port $1; stop it first"
        fi
        log "already running (pid $pid)"
        printf '%s\n' "$current"
        return 0
    fi
    prepare "${1:-}"
    local offset=0
    [[ -f "$SERVER_LOG" ]] && offset="$(stat -c %s "$SERVER_LOG")"
    local t0=$SECONDS
    # setsid: not tied to the starting terminal; stdin closed.
    setsid "${BROKER[@]}" </dev/null >>"$OUT" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
    while :; do
        if ! alive "$pid"; then
            log "broker exited during startup; last lines of $OUT and $SERVER_LOG:"
            tail -n 20 "$OUT" >&2 || true
            tail -n 40 "$SERVER_LOG" >&2 || true
            rm -f "$PIDFILE"
            exit 1
        fi
        # (no grep -q: exiting early would SIGPIPE tail and fail the pipeline)
        if [[ -f "$SERVER_LOG" ]] && tail -c "+$((offset + 1))" "$SERVER_LOG" | grep -F "$READY_LINE" >/dev/null \
            && port_open "$PORT"; then
            break
        fi
        if (( SECONDS - t0 >= START_TIMEOUT )); then
            log "broker not ready after ${START_TIMEOUT}s; stopping it. See $SERVER_LOG"
            tail -n 40 "$SERVER_LOG" >&2 || true
            cmd_stop
            exit 1
        fi
        sleep 0.2
    done
    printf '127.0.0.1:%s\n' "$PORT" >"$BOOTFILE"
    log "started (pid $pid) in $((SECONDS - t0))s, data in $DATA_DIR"
    printf '127.0.0.1:%s\n' "$PORT"
}

cmd_run() {
    prepare "${1:-}"
    printf '%s\n' "$$" >"$PIDFILE"
    printf '127.0.0.1:%s\n' "$PORT" >"$BOOTFILE"
    exec "${BROKER[@]}"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PIDFILE" "$BOOTFILE"
        log "not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while alive "$pid"; do
        if (( SECONDS >= deadline )); then
            log "still running after ${STOP_TIMEOUT}s, killing pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.1
    done
    rm -f "$PIDFILE" "$BOOTFILE"
    log "stopped (pid $pid)"
}

cmd_status() {
    local pid boot
    if pid="$(running_pid)"; then
        boot="$(cat "$BOOTFILE" 2>/dev/null || true)"
        if [[ -n "$boot" ]] && port_open "${boot##*:}"; then
            log "running (pid $pid), data in $DATA_DIR"
            printf '%s\n' "$boot"
            return 0
        fi
        log "starting or unresponsive (pid $pid)"
        return 1
    fi
    log "not running"
    return 1
}

cmd_clean() {
    cmd_stop
    rm -rf "$DATA_DIR"
    log "removed $DATA_DIR"
}

cmd_tool() {
    [[ $# -ge 1 ]] || die "usage: kafka.sh tool CLASS [ARGS...]"
    ensure_jars
    jvm_base tool
    local cls="$1"; shift
    exec "${JVM[@]}" "$cls" "$@"
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    run) shift; cmd_run "$@" ;;
    jars) ensure_jars ;;
    clean) cmd_clean ;;
    tool) shift; cmd_tool "$@" ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
