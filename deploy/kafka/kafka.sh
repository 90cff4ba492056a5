#!/usr/bin/env bash
# Local single-node Apache Kafka 4.3.1 broker (KRaft, combined broker+controller)
# for development and tests. Jars come from Maven Central via deploy/kafka/pom.xml;
# nothing else is downloaded.
#
# Usage: deploy/kafka/kafka.sh COMMAND [ARGS]
#   fetch                         resolve the jars into .local/kafka/libs (idempotent)
#   up                            start the broker (fetch, format storage if needed) and
#                                 wait until it serves requests; no-op if ours is running
#   down                          stop the broker (SIGTERM, then SIGKILL after 30 s)
#   status                        print running / not running (exit 0 / 3)
#   topics-create NAME:PARTS ...  create topics if missing (replication factor 1);
#                                 fails if an existing topic has another partition count
#   topics-list                   list topics
#   reset                         down, then delete the data dir
#
# Environment:
#   LIVEPULSE_KAFKA_PORT             client listener port (default 9092)
#   LIVEPULSE_KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
#   LIVEPULSE_KAFKA_HOME             config, data, log and pid dir (default <repo>/.local/kafka)
#   LIVEPULSE_KAFKA_LIBS             jar dir (default <repo>/.local/kafka/libs, shared by all homes)
#   LIVEPULSE_KAFKA_START_TIMEOUT    seconds `up` waits for readiness (default 90)
#   LIVEPULSE_KAFKA_STOP_TIMEOUT     seconds `down` waits after SIGTERM (default 30)
#   LIVEPULSE_KAFKA_JVM_OPTS         extra JVM options for the broker
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/pom.xml"

PORT="${LIVEPULSE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${LIVEPULSE_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HOME="${LIVEPULSE_KAFKA_HOME:-$REPO_ROOT/.local/kafka}"
LIBS="${LIVEPULSE_KAFKA_LIBS:-$REPO_ROOT/.local/kafka/libs}"
START_TIMEOUT="${LIVEPULSE_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${LIVEPULSE_KAFKA_STOP_TIMEOUT:-30}"
HOST=127.0.0.1
BOOTSTRAP="$HOST:$PORT"

DATA_DIR="$KAFKA_HOME/data"
SERVER_PROPS="$KAFKA_HOME/server.properties"
ADMIN_PROPS="$KAFKA_HOME/admin.properties"
LOG4J_BROKER="$KAFKA_HOME/log4j2-broker.properties"
LOG4J_TOOLS="$KAFKA_HOME/log4j2-tools.properties"
BROKER_LOG="$KAFKA_HOME/broker.log"
PID_FILE="$KAFKA_HOME/broker.pid"
STAMP="$LIBS/.fetched"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in PORT CONTROLLER_PORT START_TIMEOUT STOP_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[[ "$PORT" != "$CONTROLLER_PORT" ]] || die "client and controller ports must differ ($PORT)"

# ---------------------------------------------------------------- helpers

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found; run deploy/system-deps.sh"; }

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

libs_ok() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(pom_hash)" ]] &&
        compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

# The pid recorded in the pid file if that process is alive and is our broker.
our_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(tr -dc '0-9' <"$PID_FILE")"
    [[ -n "$pid" ]] && is_our_broker "$pid" && { echo "$pid"; return 0; }
    return 1
}

is_our_broker() {
    local cmdline
    [[ -r "/proc/$1/cmdline" ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"kafka.Kafka $SERVER_PROPS"* ]]
}

# Brokers started from this home whose pid file was lost (exact config path match).
stray_pids() {
    local p
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        is_our_broker "$p" && echo "$p"
    done
    return 0
}

pid_alive() { kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

# Serialise up/down/reset on one home. The fd is closed for the broker itself.
lock_home() {
    mkdir -p "$KAFKA_HOME"
    exec 8>"$KAFKA_HOME/.lock"
    flock -w 300 8 || die "timed out waiting for the lock on $KAFKA_HOME"
}

tool() { # tool MAIN_CLASS ARGS...: run a Kafka CLI class with quiet logging
    local main="$1"; shift
    timeout "${TOOL_TIMEOUT:-120}" java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j2.configurationFile="$LOG4J_TOOLS" \
        -cp "$LIBS/*" "$main" "$@"
}

topic_cmd() { tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_PROPS" "$@"; }

# Kafka Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding,
# never starting with '-' (which the CLIs would read as an option).
random_cluster_id() {
    local id
    while :; do
        id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" != -* && "$id" != AAAAAAAAAAAAAAAAAAAAA[AB] ]] && { echo "$id"; return; }
    done
}

write_configs() {
    mkdir -p "$KAFKA_HOME" "$DATA_DIR"
    cat >"$SERVER_PROPS" <<EOF
# Written by deploy/kafka/kafka.sh on every 'up'; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
# After a SIGKILL the old registration blocks a restarted broker until its session
# expires (default 9 s); shorter keeps crash-restart tests quick.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
num.network.threads=2
num.io.threads=4
log.retention.hours=168
log.segment.bytes=67108864
EOF
    cat >"$ADMIN_PROPS" <<EOF
request.timeout.ms=5000
default.api.timeout.ms=15000
EOF
    # Broker: log4j2 writes to stdout, which 'up' sends to broker.log. INFO for the
    # broker lifecycle, WARN for the chatty parts (config dumps, per-request logs).
    cat >"$LOG4J_BROKER" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.config.name = org.apache.kafka.common.config
logger.config.level = warn
logger.kconfig.name = kafka.server.KafkaConfig
logger.kconfig.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = warn
EOF
    # CLI tools: warnings and errors to stderr only.
    cat >"$LOG4J_TOOLS" <<'EOF'
status = error
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = ERR
EOF
}

# Format the KRaft storage once (kafka-storage format --standalone: a single-voter
# dynamic quorum). A formatted dir also starts fine after a controller port change.
format_if_needed() {
    [[ -f "$DATA_DIR/meta.properties" ]] && return 0
    local cid
    cid="$(random_cluster_id)"
    log "formatting $DATA_DIR (cluster id $cid)"
    tool kafka.tools.StorageTool format --config "$SERVER_PROPS" --cluster-id "$cid" --standalone >/dev/null ||
        die "storage format failed"
}

broker_tail() {
    [[ -f "$BROKER_LOG" ]] || return 0
    log "last lines of $BROKER_LOG:"
    tail -n 40 "$BROKER_LOG" >&2
}

wait_ready() { # wait_ready PID
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! pid_alive "$pid"; then
            rm -f "$PID_FILE"
            broker_tail
            die "broker exited during startup"
        fi
        if port_open "$PORT" && TOOL_TIMEOUT=30 topic_cmd --list >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    broker_tail
    log "broker not ready on $BOOTSTRAP after ${START_TIMEOUT}s; stopping pid $pid"
    stop_pid "$pid"
    rm -f "$PID_FILE"
    die "broker did not become ready (raise LIVEPULSE_KAFKA_START_TIMEOUT if the machine is slow)"
}

# ---------------------------------------------------------------- commands

cmd_fetch() {
    need java
    need mvn
    if libs_ok; then
        return 0
    fi
    mkdir -p "$(dirname "$LIBS")"
    exec 7>"$(dirname "$LIBS")/.fetch.lock"
    flock -w 600 7 || die "timed out waiting for another fetch"
    libs_ok && return 0
    local tmp="$LIBS.tmp.$$"
    rm -rf "$tmp"
    log "resolving Kafka jars with Maven into $LIBS"
    if ! mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime >"$LIBS.fetch.log" 2>&1; then
        tail -n 40 "$LIBS.fetch.log" >&2
        rm -rf "$tmp"
        die "mvn dependency:copy-dependencies failed (full output: $LIBS.fetch.log)"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "no kafka_2.13 jar resolved"; }
    pom_hash >"$tmp/.fetched"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    exec 7>&-
}

cmd_up() {
    cmd_fetch
    lock_home
    local pid
    if pid="$(our_pid)"; then
        if port_open "$PORT"; then
            echo "kafka already running on $BOOTSTRAP (pid $pid)"
            return 0
        fi
        log "broker pid $pid is starting; waiting"
        wait_ready "$pid"
        echo "kafka ready on $BOOTSTRAP (pid $pid)"
        return 0
    fi
    rm -f "$PID_FILE"
    local strays
    strays="$(stray_pids)"
    [[ -z "$strays" ]] || die "a broker for $KAFKA_HOME runs without a pid file (pid $(echo $strays)); stop it with '$0 down'"
    port_open "$PORT" && die "port $PORT is busy, but not by this script's broker for $KAFKA_HOME; stop that process or set LIVEPULSE_KAFKA_PORT"
    port_open "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is busy; stop that process or set LIVEPULSE_KAFKA_CONTROLLER_PORT"

    write_configs
    format_if_needed

    [[ -f "$BROKER_LOG" ]] && mv -f "$BROKER_LOG" "$BROKER_LOG.1"
    log "starting broker on $BOOTSTRAP (controller $HOST:$CONTROLLER_PORT), log $BROKER_LOG"
    # setsid: own session, so a Ctrl-C or a killed process group of the caller leaves it
    # alone; 7/8>&-: the broker must not hold our lock fds. The exec keeps the pid.
    # shellcheck disable=SC2086
    nohup setsid java -Xms256m -Xmx512m \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$LOG4J_BROKER" -Dkafka.logs.dir="$KAFKA_HOME" \
        ${LIVEPULSE_KAFKA_JVM_OPTS:-} \
        -cp "$LIBS/*" kafka.Kafka "$SERVER_PROPS" \
        </dev/null >"$BROKER_LOG" 2>&1 7>&- 8>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_ready "$pid"
    echo "kafka ready on $BOOTSTRAP (pid $pid)"
}

stop_pid() { # stop_pid PID
    local pid="$1" deadline=$((SECONDS + STOP_TIMEOUT))
    kill -TERM "$pid" 2>/dev/null || true
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if pid_alive "$pid"; then
        log "broker pid $pid still running after ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        pid_alive "$pid" && die "broker pid $pid survived SIGKILL"
    fi
    return 0
}

cmd_down() {
    lock_home
    local pids pid
    pids="$( { our_pid || true; stray_pids; } | sort -u)"
    if [[ -z "$pids" ]]; then
        rm -f "$PID_FILE"
        echo "kafka not running"
        return 0
    fi
    for pid in $pids; do
        stop_pid "$pid"
    done
    rm -f "$PID_FILE"
    echo "kafka stopped (pid $(echo $pids))"
}

cmd_status() {
    local pid
    if pid="$(our_pid)"; then
        if port_open "$PORT"; then
            echo "running on $BOOTSTRAP (pid $pid)"
        else
            echo "starting (pid $pid, $BOOTSTRAP not accepting yet)"
        fi
        return 0
    fi
    if port_open "$PORT"; then
        echo "not running (port $PORT is used by another process)"
    else
        echo "not running"
    fi
    return 3
}

require_running() {
    our_pid >/dev/null || port_open "$PORT" || die "no broker on $BOOTSTRAP; run '$0 up' first"
    [[ -f "$LOG4J_TOOLS" && -f "$ADMIN_PROPS" ]] || write_configs
    libs_ok || cmd_fetch
}

cmd_topics_list() {
    require_running
    topic_cmd --list
}

cmd_topics_create() {
    (($# > 0)) || die "usage: $0 topics-create NAME:PARTITIONS ..."
    local spec name parts existing created=() checked=()
    for spec in "$@"; do
        [[ "$spec" =~ ^[A-Za-z0-9._-]+:[1-9][0-9]*$ ]] || die "bad topic spec '$spec' (want NAME:PARTITIONS)"
    done
    require_running
    existing="$(topic_cmd --list)" || die "could not list topics on $BOOTSTRAP"
    for spec in "$@"; do
        name="${spec%:*}" parts="${spec##*:}"
        if grep -qxF -- "$name" <<<"$existing"; then
            checked+=("$spec")
            continue
        fi
        topic_cmd --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 >/dev/null ||
            die "creating topic $name failed"
        created+=("$name")
    done
    # Existing topics must have the requested partition count (co-partitioning).
    local desc count
    for spec in "${checked[@]}"; do
        name="${spec%:*}" parts="${spec##*:}"
        desc="$(topic_cmd --describe --topic "$name" | head -n1)" || die "could not describe topic $name"
        count="$(sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' <<<"$desc")"
        [[ "$count" == "$parts" ]] || die "topic $name exists with $count partitions, wanted $parts"
    done
    ((${#created[@]} == 0)) || echo "created: ${created[*]}"
    ((${#checked[@]} == 0)) || echo "already present: ${checked[*]%:*}"
}

cmd_reset() {
    cmd_down
    lock_home
    rm -rf "$DATA_DIR"
    echo "deleted $DATA_DIR"
}

case "${1:-}" in
    fetch) shift; cmd_fetch "$@"; libs_ok && echo "jars in $LIBS" ;;
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    status) shift; cmd_status "$@" ;;
    topics-create) shift; cmd_topics_create "$@" ;;
    topics-list) shift; cmd_topics_list "$@" ;;
    reset) shift; cmd_reset "$@" ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
