#!/usr/bin/env bash
# `make run`: local broker + topics + worker + simulator, and the live view (`livepulse top`)
# in a terminal, or alert lines where stdout is not one.
# Ctrl-C stops everything this script started (and only that).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
RUN_DIR=.local/run
mkdir -p "$RUN_DIR"
KAFKA=deploy/kafka/kafka.sh
METRICS_URL="http://${LIVEPULSE_METRICS_HOST:-127.0.0.1}:${LIVEPULSE_METRICS_PORT:-6066}/metrics"
export LIVEPULSE_BROKER="${LIVEPULSE_BROKER:-127.0.0.1:${LIVEPULSE_KAFKA_PORT:-9092}}"
SINCE_MS=$(date +%s%3N)
STREAMS="${LIVEPULSE_RUN_STREAMS:-20}"
RATE="${LIVEPULSE_RUN_RATE:-500}"
# creators take turns in the streams, about five minutes a session: the money view sees
# creators go live several times (and across midnight, when the run spans it)
CREATORS="${LIVEPULSE_RUN_CREATORS:-$((STREAMS * 3 / 2))}"
LIFETIME="${LIVEPULSE_RUN_LIFETIME:-300}"

started_kafka=0
worker_pid=""
sim_pid=""

say() { printf '\033[1mlivepulse run:\033[0m %s\n' "$*" >&2; }

stop_all() {
  trap - EXIT INT TERM
  say "stopping..."
  [ -n "$sim_pid" ] && kill -TERM "$sim_pid" 2>/dev/null || true
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$worker_pid" 2>/dev/null || true
  fi
  [ -n "$sim_pid" ] && wait "$sim_pid" 2>/dev/null || true
  [ -n "$worker_pid" ] && wait "$worker_pid" 2>/dev/null || true
  if [ "$started_kafka" = 1 ]; then bash "$KAFKA" down; fi
  say "stopped (logs in $RUN_DIR/)"
}

if ! bash "$KAFKA" status >/dev/null 2>&1; then started_kafka=1; fi
trap stop_all EXIT
trap 'exit 0' INT TERM  # a requested stop is not a failure
bash "$KAFKA" up
bash "$KAFKA" topics-create live.events:4 live.alerts:4 live.events.dlq:4

say "starting the worker (log: $RUN_DIR/worker.log)"
"$BIN/livepulse" worker >"$RUN_DIR/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "$METRICS_URL" 2>/dev/null; then break; fi
  if ! kill -0 "$worker_pid" 2>/dev/null; then
    say "the worker exited during start-up:"; tail -n 20 "$RUN_DIR/worker.log" >&2; exit 1
  fi
  sleep 0.2
done

say "starting the simulator: $STREAMS streams of $CREATORS creators taking turns, at $RATE events/s (log: $RUN_DIR/simulator.log)"
"$BIN/livepulse" simulate --streams "$STREAMS" --rate "$RATE" --creators "$CREATORS" \
  --lifetime "$LIFETIME" >"$RUN_DIR/simulator.log" 2>&1 &
sim_pid=$!

say "metrics: $METRICS_URL"
if [ -t 0 ] && [ -t 1 ] && [ -z "${LIVEPULSE_RUN_ALERT_LINES:-}" ]; then
  # a terminal: the live view (q or Ctrl-C stops it, and everything with it)
  say "opening the live view (livepulse top): q or Ctrl-C to stop; alert lines: LIVEPULSE_RUN_ALERT_LINES=1 make run"
  "$BIN/livepulse" top
else
  say "alerts from live.alerts (also: kcat -b $LIVEPULSE_BROKER -C -t live.alerts); Ctrl-C to stop"
  "$BIN/livepulse" alerts --since-ms "$SINCE_MS"
fi
