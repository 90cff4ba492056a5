#!/usr/bin/env bash
# Ensures the system tools livepulse's tests use are present (idempotent):
#   kcat, prometheus   Debian packages, installed with apt-get when missing
#   java (17), mvn     checked only; the local Kafka broker (deploy/kafka/kafka.sh) needs them
# The prometheus package ships an init script; the tests run prometheus in the
# foreground themselves, so no daemon is left running after an install.
set -euo pipefail

log() { printf 'system-deps: %s\n' "$*" >&2; }

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
if ! command -v prometheus >/dev/null 2>&1 ||
    ! dpkg -s prometheus 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=(prometheus)
fi

if ((${#missing[@]} > 0)); then
    if [[ "$(id -u)" == 0 ]]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        log "missing Debian packages: ${missing[*]}"
        log "install them as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
        exit 1
    fi

    # Keep maintainer scripts from starting services (prometheus's init script would
    # start a daemon on :9090 where no systemd is running): a policy-rc.d that denies
    # every start, only for the duration of the install and only if none exists.
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# temporary, from livepulse deploy/system-deps.sh\nexit 101\n' |
            "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        added_policy=1
    fi
    cleanup() { if ((added_policy)); then "${SUDO[@]}" rm -f "$policy"; fi; }
    trap cleanup EXIT

    before="$(pgrep -x prometheus || true)"
    log "installing ${missing[*]} with apt-get"
    # Lock::Timeout waits for another apt/dpkg run (e.g. unattended installs) instead of failing.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

    # Stop any prometheus daemon the install started (only processes that are new).
    for pid in $(pgrep -x prometheus || true); do
        if ! grep -qxF "$pid" <<<"$before"; then
            log "stopping prometheus daemon pid $pid started by the package install"
            "${SUDO[@]}" kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            if kill -0 "$pid" 2>/dev/null; then "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true; fi
        fi
    done
    cleanup
    trap - EXIT

    command -v kcat >/dev/null 2>&1 || { log "kcat still missing after install"; exit 1; }
    command -v prometheus >/dev/null 2>&1 || { log "prometheus still missing after install"; exit 1; }
fi

status=0
if ! command -v java >/dev/null 2>&1; then
    log "java not found: the local Kafka broker needs Java 17 (Debian: apt-get install openjdk-17-jre-headless)"
    status=1
else
    jv="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
    if [[ -z "$jv" || "$jv" -lt 17 ]]; then
        log "java ${jv:-?} found, Kafka 4.x needs Java 17 or newer"
        status=1
    fi
fi
if ! command -v mvn >/dev/null 2>&1; then
    log "mvn not found: deploy/kafka/kafka.sh fetches Kafka with Maven (Debian: apt-get install maven)"
    status=1
fi
((status == 0)) || exit "$status"

echo "system deps ok: kcat $(dpkg-query -W -f='${Version}' kcat 2>/dev/null || echo '?'), prometheus $(prometheus --version 2>&1 | head -n1 | awk '{print $3}'), java $jv, $(mvn -v 2>/dev/null | head -n1 | sed 's/\x1b\[[0-9;]*m//g')"
