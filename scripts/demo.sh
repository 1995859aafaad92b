#!/usr/bin/env bash
# `make demo`: start the gateway with the Hazelhurst Court scheme, stream simulated device
# events through Mosquitto, and show what landed in TimescaleDB. The gateway keeps running.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RUN=var/demo
PID=$RUN/gateway.pid
LOG=$RUN/gateway.log
mkdir -p "$RUN"
export TELECARE_SCHEMES=${TELECARE_SCHEMES:-'["examples/hazelhurst-court.yaml"]'}
PORT=${TELECARE_HTTP__PORT:-8470}
# The development accounts the gateway creates on its first start (outside the repository).
CREDS=${TELECARE_AUTH__DEV_CREDENTIALS_FILE:-var/dev-credentials.json}
export TELECARE_AUTH__DEV_CREDENTIALS_FILE=$CREDS

running() { [[ -f $PID ]] && kill -0 "$(cat "$PID")" 2>/dev/null; }

if [[ ${1:-} == stop ]]; then
  if running; then kill "$(cat "$PID")" && echo "demo: gateway stopped"; else echo "demo: gateway not running"; fi
  rm -f "$PID"
  exit 0
fi

if running; then
  echo "demo: gateway already running (pid $(cat "$PID")), reusing it"
else
  echo "demo: starting the gateway (log: $LOG)"
  nohup "$BIN/telecare" gateway run >>"$LOG" 2>&1 &
  echo $! >"$PID"
fi
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  if ! running; then echo "demo: the gateway exited; last lines of $LOG:"; tail -20 "$LOG"; exit 1; fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "demo: gateway not ready"; tail -20 "$LOG"; exit 1; }

if [[ -f $CREDS ]]; then
  echo "demo: development accounts (admin and control room) are in $CREDS"
else
  echo "demo: no $CREDS: this gateway's accounts were made before; reset one with"
  echo "      .venv/bin/telecare users reset dev-control   (and pass it as TELECARE_API_USER/PASSWORD)"
fi
# `telecare events` and the TUI sign in with the control-room account from that file.
API_USER=dev-control

echo "demo: publishing 300 device events from Hazelhurst Court's pendants, hubs and sensors"
"$BIN/telecare" simulate stream --count 300 --rate 150 --seed "$RANDOM"
sleep 1.5
"$BIN/telecare" events --limit 15

SPEED=${DEMO_SPEED:-300}
echo
echo "demo: now a whole night at Hazelhurst Court (23:00-07:00) at x$SPEED: simulated pendants,"
echo "      fall detectors and hubs, and two waking-night carers' handsets, against a gateway of"
echo "      its own on a fast clock. Every figure below is checked against TimescaleDB."
rc=0
"$BIN/telecare" simulate run --scenario hazelhurst-night --speed "$SPEED" --rerun-slower \
  --json "$RUN/hazelhurst-night.json" || rc=$?
case $rc in
  0) ;;
  1) echo "demo: the night did not meet its expectations (see the product checks above)" ;;
  2) echo "demo: the run was not valid: this machine could not keep time (see the run's health above)" ;;
  *) echo "demo: the simulator exited with $rc" ;;
esac

cat <<MSG

The gateway is still running (pid $(cat "$PID")):
  health   http://127.0.0.1:$PORT/readyz
  metrics  http://127.0.0.1:$PORT/metrics
  API      http://127.0.0.1:$PORT/docs
  accounts:      $CREDS (development admin and control room; docs/security.md)
  more events:   .venv/bin/telecare simulate stream --count 100
  latest events: .venv/bin/telecare events
  live alarms:   TOKEN=\$(curl -s -X POST http://127.0.0.1:$PORT/api/v1/session \\
                   -H 'Content-Type: application/json' \\
                   -d '{"username": "$API_USER", "password": "<from $CREDS>"}' | jq -r .token)
                 curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$PORT/api/v1/alarms
  carer page:    .venv/bin/telecare carers issue-tokens --carer cw-01, then open
                 http://127.0.0.1:$PORT/carer and sign in as hazelhurst-court / cw-01
  other nights:  .venv/bin/telecare simulate run --scenario hazelhurst-one-carer-sick --speed 300
  verdict JSON:  $RUN/hazelhurst-night.json
Stop it with:  make stop        (and the services with: make services-stop)
MSG

# In a terminal, open the control room on top of the running gateway (q quits the TUI only).
if [[ -t 0 && -t 1 && ${DEMO_TUI:-1} != 0 ]]; then
  echo "demo: opening the control-room TUI in 3 s (q to quit it; the gateway keeps running)"
  sleep 3
  .venv/bin/python -m dashboard_tui --url "http://127.0.0.1:$PORT" --credentials "$CREDS"
fi
