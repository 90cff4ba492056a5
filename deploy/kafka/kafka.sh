#!/usr/bin/env bash
# Local single-node Apache Kafka 4.3.1 broker (KRaft, combined broker+controller)
# for development and tests. Jars come from Maven Central via deploy/kafka/pom.xml;
# nothing else is downloaded.
#
# Usage: deploy/kafka/kafka.sh COMMAND [ARGS]
#   fetch                         resolve the jars into .local/kafka/libs (idempotent)
#   up                            start the broker (fetch, format storage if needed) and
#                                 wait until it serves requests; no-op if ours is running
#                                 (with LIVEPULSE_KAFKA_SECURE=1 it fails if ours runs
#                                 without the secured listeners: run 'down' first)
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
#   LIVEPULSE_KAFKA_SECURE           1: 'up' starts a secured broker (see below); default 0
#   LIVEPULSE_KAFKA_SASL_SSL_PORT    SASL_SSL listener port (default client port + 2)
#   LIVEPULSE_KAFKA_SSL_PORT         SSL (mutual TLS) listener port (default client port + 3)
#   LIVEPULSE_KAFKA_SASL_PLAINTEXT_PORT  SASL_PLAINTEXT listener port (default client port + 4)
#
# Secured mode (LIVEPULSE_KAFKA_SECURE=1, for tests of livepulse's SASL/TLS settings; never
# for production: fixed test credentials, keys without passphrases). The broker keeps the
# PLAINTEXT listener (the tools here use it; it stays the inter-broker listener) and adds:
#   SASL_SSL        PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; no client certificate
#   SSL             client certificate required (mutual TLS)
#   SASL_PLAINTEXT  SCRAM-SHA-512 only (a PLAIN client fails with an unsupported mechanism)
# One user for every SASL mechanism: livepulse / livepulse-secret. The first secured 'up'
# of a home makes a test CA, a broker certificate (SAN IP:127.0.0.1, DNS:localhost), a
# client certificate and an unrelated CA in $LIVEPULSE_KAFKA_HOME/tls/ with openssl; later
# ones reuse them ('reset' keeps them): ca.pem, client.pem, client.key (unencrypted PEM),
# untrusted-ca.pem. 'up' returns once each secured listener has served an authenticated
# client (SCRAM-SHA-256 over SASL_SSL, SCRAM-SHA-512 over SASL_PLAINTEXT, the client
# certificate over SSL). A secured 'up' that formats the data dir adds the SCRAM user
# to it; one that finds the user missing (a data dir formatted by a plain 'up') sets it.
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
SECURE="${LIVEPULSE_KAFKA_SECURE:-0}"
SASL_SSL_PORT="${LIVEPULSE_KAFKA_SASL_SSL_PORT:-$((PORT + 2))}"
SSL_PORT="${LIVEPULSE_KAFKA_SSL_PORT:-$((PORT + 3))}"
SASL_PLAINTEXT_PORT="${LIVEPULSE_KAFKA_SASL_PLAINTEXT_PORT:-$((PORT + 4))}"
HOST=127.0.0.1
BOOTSTRAP="$HOST:$PORT"
SASL_USER=livepulse
SASL_PASSWORD=livepulse-secret

DATA_DIR="$KAFKA_HOME/data"
SERVER_PROPS="$KAFKA_HOME/server.properties"
ADMIN_PROPS="$KAFKA_HOME/admin.properties"
LOG4J_BROKER="$KAFKA_HOME/log4j2-broker.properties"
LOG4J_TOOLS="$KAFKA_HOME/log4j2-tools.properties"
BROKER_LOG="$KAFKA_HOME/broker.log"
PID_FILE="$KAFKA_HOME/broker.pid"
STAMP="$LIBS/.fetched"
TLS_DIR="$KAFKA_HOME/tls"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in PORT CONTROLLER_PORT START_TIMEOUT STOP_TIMEOUT SASL_SSL_PORT SSL_PORT SASL_PLAINTEXT_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[[ "$PORT" != "$CONTROLLER_PORT" ]] || die "client and controller ports must differ ($PORT)"
case "$SECURE" in
    1) SECURE=1 ;;
    0 | "") SECURE=0 ;;
    *) die "LIVEPULSE_KAFKA_SECURE must be 0 or 1, got '$SECURE'" ;;
esac
if ((SECURE)); then
    [[ "$(printf '%s\n' "$PORT" "$CONTROLLER_PORT" "$SASL_SSL_PORT" "$SSL_PORT" "$SASL_PLAINTEXT_PORT" | sort -u | wc -l)" == 5 ]] ||
        die "the five listener ports must differ ($PORT, $CONTROLLER_PORT, $SASL_SSL_PORT, $SSL_PORT, $SASL_PLAINTEXT_PORT)"
fi

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

# The listeners line of server.properties for this invocation's mode.
wanted_listeners() {
    local l="PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT"
    if ((SECURE)); then
        l+=",SASL_SSL://$HOST:$SASL_SSL_PORT,SSL://$HOST:$SSL_PORT,SASL_PLAINTEXT://$HOST:$SASL_PLAINTEXT_PORT"
    fi
    echo "$l"
}

# The listeners the broker of this home was started with (server.properties is only
# written when 'up' starts a broker).
running_listeners() { sed -n 's/^listeners=//p' "$SERVER_PROPS" 2>/dev/null || true; }

secured_summary() {
    echo "SASL_SSL $HOST:$SASL_SSL_PORT, SSL $HOST:$SSL_PORT, SASL_PLAINTEXT $HOST:$SASL_PLAINTEXT_PORT"
}

write_configs() {
    mkdir -p "$KAFKA_HOME" "$DATA_DIR"
    local listeners protocols
    listeners="$(wanted_listeners)"
    protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    ((SECURE)) && protocols+=",SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"
    cat >"$SERVER_PROPS" <<EOF
# Written by deploy/kafka/kafka.sh on every 'up'; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$listeners
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
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
    if ((SECURE)); then
        write_secure_configs
    fi
    write_tool_configs
}

# Broker settings of the secured listeners, and the client configs 'up' probes them with.
write_secure_configs() {
    local scram='org.apache.kafka.common.security.scram.ScramLoginModule required'
    cat >>"$SERVER_PROPS" <<EOF
# Secured mode (LIVEPULSE_KAFKA_SECURE=1): test certificates in $TLS_DIR.
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram;
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$scram;
EOF
    local common="request.timeout.ms=5000
default.api.timeout.ms=15000"
    local jaas="sasl.jaas.config=$scram username=\"$SASL_USER\" password=\"$SASL_PASSWORD\";"
    cat >"$KAFKA_HOME/client-sasl-ssl.properties" <<EOF
$common
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-256
$jaas
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
EOF
    cat >"$KAFKA_HOME/client-ssl.properties" <<EOF
$common
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/client-keystore.pem
EOF
    cat >"$KAFKA_HOME/client-sasl-plaintext.properties" <<EOF
$common
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
$jaas
EOF
}

write_tool_configs() {
    mkdir -p "$KAFKA_HOME"
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
    local cid scram=()
    cid="$(random_cluster_id)"
    if ((SECURE)); then
        scram=(--add-scram "SCRAM-SHA-256=[name=$SASL_USER,iterations=8192,password=$SASL_PASSWORD]"
            --add-scram "SCRAM-SHA-512=[name=$SASL_USER,iterations=8192,password=$SASL_PASSWORD]")
    fi
    log "formatting $DATA_DIR (cluster id $cid)"
    tool kafka.tools.StorageTool format --config "$SERVER_PROPS" --cluster-id "$cid" --standalone \
        "${scram[@]}" >/dev/null || die "storage format failed"
}

TLS_FILES=(ca.pem ca.key broker-keystore.pem client.pem client.key client-keystore.pem untrusted-ca.pem)

tls_complete() {
    local f
    for f in "${TLS_FILES[@]}"; do [[ -s "$TLS_DIR/$f" ]] || return 1; done
}

# Test certificates, made once per home with openssl (reused while complete): a CA, a
# broker certificate it signs for 127.0.0.1/localhost, a client certificate (CN=livepulse)
# and an unrelated CA. Keys are unencrypted PKCS#8 PEM, which Kafka's PEM stores read.
make_certs() {
    tls_complete && return 0
    need openssl
    local tmp="$TLS_DIR.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    log "making test certificates in $TLS_DIR"
    # A background subshell, so that set -e holds in it (it would not in an 'if !' test).
    (
        cd "$tmp"
        umask 077
        cat >openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[broker]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
EOF
        newkey() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"; }
        selfsigned() { # selfsigned NAME CN
            newkey "$1.key"
            openssl req -new -x509 -config openssl.cnf -extensions ca -key "$1.key" \
                -subj "/O=livepulse tests/CN=$2" -days 3650 -sha256 -out "$1.pem"
        }
        signed() { # signed NAME CN EXTENSIONS
            newkey "$1.key"
            openssl req -new -config openssl.cnf -key "$1.key" -subj "/O=livepulse tests/CN=$2" -out "$1.csr"
            openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 12)" \
                -days 3650 -sha256 -extfile openssl.cnf -extensions "$3" -out "$1.pem"
            rm -f "$1.csr"
        }
        selfsigned ca livepulse-test-ca
        selfsigned untrusted-ca livepulse-untrusted-ca
        rm -f untrusted-ca.key
        signed broker localhost broker
        signed client livepulse client
        cat broker.key broker.pem ca.pem >broker-keystore.pem
        cat client.key client.pem >client-keystore.pem
        rm -f broker.key broker.pem openssl.cnf
        openssl verify -CAfile ca.pem client.pem
        openssl verify -CAfile ca.pem -verify_ip 127.0.0.1 <(sed -n '/BEGIN CERT/,/END CERT/p;/END CERT/q' broker-keystore.pem)
        chmod 644 ca.pem client.pem untrusted-ca.pem
    ) >"$tmp.log" 2>&1 &
    if ! wait "$!"; then
        cat "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        die "making test certificates failed"
    fi
    rm -f "$tmp.log"
    rm -rf "$TLS_DIR"
    mv "$tmp" "$TLS_DIR"
}

# SCRAM credentials live in the cluster metadata: a secured 'up' adds them when it formats
# the data dir, and this sets them through PLAINTEXT for a data dir formatted without
# them (a plain 'up' first). One request per mechanism (Kafka 4.3 rejects a request that
# alters one user twice: DuplicateResourceException), both at once.
set_scram_credentials() {
    local mech pids=() p rc=0
    for mech in SCRAM-SHA-256 SCRAM-SHA-512; do
        tool kafka.admin.ConfigCommand --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_PROPS" \
            --alter --entity-type users --entity-name "$SASL_USER" \
            --add-config "$mech=[iterations=8192,password=$SASL_PASSWORD]" >/dev/null &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return "$rc"
}

probe_until() { # probe_until NAME PORT CLIENT_PROPS DEADLINE STRICT: until a client gets through
    # Returns 0 once it did, 1 at the deadline, and 2 at once if STRICT=1 and the broker
    # refused the credentials (the SCRAM user is missing; with STRICT=0 that is retried,
    # as new credentials reach the broker a moment after they are set).
    local out
    while :; do
        if out="$(TOOL_TIMEOUT=30 tool org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$HOST:$2" --command-config "$3" --list 2>&1)"; then
            return 0
        fi
        if (($5)) && [[ "$out" == *"due to invalid credentials"* ]]; then
            return 2
        fi
        if ((SECONDS >= $4)); then
            log "$1 listener $HOST:$2 did not accept an authenticated client ($3):"
            tail -n 5 <<<"$out" >&2
            return 1
        fi
        sleep 0.5
    done
}

probe_all() { # probe_all DEADLINE STRICT: the worst probe_until status of the listeners
    local pids=() p rc worst=0
    probe_until SASL_SSL "$SASL_SSL_PORT" "$KAFKA_HOME/client-sasl-ssl.properties" "$@" &
    pids+=($!)
    probe_until SSL "$SSL_PORT" "$KAFKA_HOME/client-ssl.properties" "$@" &
    pids+=($!)
    probe_until SASL_PLAINTEXT "$SASL_PLAINTEXT_PORT" "$KAFKA_HOME/client-sasl-plaintext.properties" "$@" &
    pids+=($!)
    for p in "${pids[@]}"; do
        rc=0
        wait "$p" || rc=$?
        ((rc == 1 || (rc == 2 && worst == 0))) && worst=$rc
    done
    return "$worst"
}

# True once every secured listener has served an authenticated client, probed in
# parallel (one JVM each): SCRAM-SHA-256 over SASL_SSL, the client certificate over SSL,
# SCRAM-SHA-512 over SASL_PLAINTEXT. Sets the SCRAM credentials if the broker lacks them.
secure_ready() {
    local deadline=$((SECONDS + START_TIMEOUT)) rc=0
    probe_all "$deadline" 1 || rc=$?
    ((rc == 2)) || return "$rc"
    log "setting the SCRAM credentials of $SASL_USER (data dir formatted without them)"
    set_scram_credentials || { log "setting the SCRAM credentials of $SASL_USER failed"; return 1; }
    probe_all "$deadline" 0
}

# With LIVEPULSE_KAFKA_SECURE=1, a broker of this home that runs without (these) secured
# listeners is an error, not a silent no-op: the caller would miss its listeners.
require_mode() { # require_mode PID
    ((SECURE)) || return 0
    local running wanted
    running="$(running_listeners)" wanted="$(wanted_listeners)"
    [[ "$running" == "$wanted" ]] && return 0
    die "the broker of $KAFKA_HOME (pid $1) runs with listeners '${running:-unknown}', but LIVEPULSE_KAFKA_SECURE=1 wants '$wanted'; stop it with '$0 down' and run 'up' again"
}

ready_msg() {
    if ((SECURE)); then
        echo "kafka $1 on $BOOTSTRAP (pid $2); secured: $(secured_summary)"
    else
        echo "kafka $1 on $BOOTSTRAP (pid $2)"
    fi
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
        require_mode "$pid"
        if port_open "$PORT"; then
            if ((SECURE)); then
                secure_ready || die "the running broker's secured listeners do not accept clients (log $BROKER_LOG)"
            fi
            ready_msg "already running" "$pid"
            return 0
        fi
        log "broker pid $pid is starting; waiting"
        wait_ready "$pid"
        if ((SECURE)); then
            secure_ready || die "the broker's secured listeners do not accept clients (log $BROKER_LOG)"
        fi
        ready_msg ready "$pid"
        return 0
    fi
    rm -f "$PID_FILE"
    local strays
    strays="$(stray_pids)"
    [[ -z "$strays" ]] || die "a broker for $KAFKA_HOME runs without a pid file (pid $(echo $strays)); stop it with '$0 down'"
    port_open "$PORT" && die "port $PORT is busy, but not by this script's broker for $KAFKA_HOME; stop that process or set LIVEPULSE_KAFKA_PORT"
    port_open "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is busy; stop that process or set LIVEPULSE_KAFKA_CONTROLLER_PORT"
    if ((SECURE)); then
        local v
        for v in SASL_SSL_PORT SSL_PORT SASL_PLAINTEXT_PORT; do
            port_open "${!v}" && die "port ${!v} is busy; stop that process or set LIVEPULSE_KAFKA_$v"
        done
        make_certs
    fi

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
    if ((SECURE)) && ! secure_ready; then
        broker_tail
        log "stopping pid $pid"
        stop_pid "$pid"
        rm -f "$PID_FILE"
        die "the broker's secured listeners did not accept clients"
    fi
    ready_msg ready "$pid"
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
            if [[ "$(running_listeners)" == *SASL_SSL://* ]]; then
                echo "running on $BOOTSTRAP (pid $pid; listeners $(running_listeners))"
            else
                echo "running on $BOOTSTRAP (pid $pid)"
            fi
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
    [[ -f "$LOG4J_TOOLS" && -f "$ADMIN_PROPS" ]] || write_tool_configs
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
