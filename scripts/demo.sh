#!/usr/bin/env bash
# `make demo`: a night at Hazelhurst Court (60 flats, two waking-night carers), twice.
#
#  1. The live night, in the background: a gateway on 127.0.0.1:8470 whose scheme clock starts
#     at 23:00 and runs x$DEMO_LIVE_SPEED (20: the night takes about 25 minutes), and the
#     simulator playing that night's pendants, fall detectors, door sensors and hubs and the
#     two carers' handsets against it, in scheme time. The control-room TUI opens on it.
#  2. The verdict, in front of you: the same night at x$DEMO_SPEED (300, under two minutes)
#     against a gateway of its own, judged from TimescaleDB.
#
# `make stop` (scripts/demo.sh stop) ends the live night and its gateway. Events are never
# streamed on the real clock: at 2 pm nobody is on the night shift to answer them.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RUN=var/demo
LIVE=$RUN/live
SIM_PID=$RUN/live.pid
OLD_PID=$RUN/gateway.pid # the gateway an older `make demo` left running
PORT=${DEMO_PORT:-8470}
LIVE_SPEED=${DEMO_LIVE_SPEED:-20}
SPEED=${DEMO_SPEED:-300}
mkdir -p "$RUN"

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

live_gateway_pid() {
  [[ -f $LIVE/gateway.json ]] && "$BIN/python" -c \
    'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$LIVE/gateway.json"
}

stop_demo() {
  local gw
  gw=$(live_gateway_pid || true)
  if alive "$SIM_PID"; then
    # SIGTERM ends the simulator like Ctrl-C: it stops the gateway it started.
    kill -TERM "$(cat "$SIM_PID")"
    for _ in $(seq 1 150); do alive "$SIM_PID" || break; sleep 0.2; done
    if alive "$SIM_PID"; then kill -KILL "$(cat "$SIM_PID")"; fi
    echo "demo: live night stopped"
  fi
  if [[ -n ${gw:-} ]] && kill -0 "$gw" 2>/dev/null; then kill -TERM "$gw"; fi
  rm -f "$SIM_PID" "$LIVE/gateway.json"
  if alive "$OLD_PID"; then kill "$(cat "$OLD_PID")" && echo "demo: old demo gateway stopped"; fi
  rm -f "$OLD_PID"
}

if [[ ${1:-} == stop ]]; then
  stop_demo
  exit 0
fi

stop_demo
if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then
  echo "demo: something already answers on 127.0.0.1:$PORT; stop it, or set DEMO_PORT"
  exit 1
fi
rm -rf "$LIVE"
mkdir -p "$LIVE"

echo "demo: starting the live night: Hazelhurst Court from 23:00 at x$LIVE_SPEED on 127.0.0.1:$PORT"
nohup "$BIN/telecare" simulate run --scenario hazelhurst-night --speed "$LIVE_SPEED" \
  --http-port "$PORT" --state-dir "$LIVE" --json "$RUN/live-verdict.json" \
  >"$RUN/live.log" 2>&1 &
echo $! >"$SIM_PID"
for _ in $(seq 1 450); do
  [[ -f $LIVE/gateway.json ]] && break
  if ! alive "$SIM_PID"; then
    echo "demo: the live night did not start; last lines of $RUN/live.log:"
    tail -20 "$RUN/live.log"
    exit 1
  fi
  sleep 0.2
done
[[ -f $LIVE/gateway.json ]] || { echo "demo: the live night's gateway is not ready"; exit 1; }

echo
echo "demo: now the verdict: the same night (23:00-07:00) at x$SPEED against a gateway of its"
echo "      own. Every figure below is checked against TimescaleDB."
rc=0
"$BIN/telecare" simulate run --scenario hazelhurst-night --speed "$SPEED" --rerun-slower \
  --json "$RUN/hazelhurst-night.json" || rc=$?
case $rc in
  0) echo "demo: the night passed: nothing lost, nobody paged twice, every alarm answered in time" ;;
  1) echo "demo: the night did not meet its expectations (see the product checks above)" ;;
  2) echo "demo: the run was not valid: this machine could not keep time (see the run's health above)" ;;
  130) echo "demo: stopped"; stop_demo; exit 130 ;;
  *) echo "demo: the simulator exited with $rc" ;;
esac

echo
"$BIN/telecare" simulate hints --live "$LIVE/gateway.json" || true
cat <<MSG

The live night plays on for about $((8 * 3600 / LIVE_SPEED / 60 + 2)) minutes, then is judged
($RUN/live-verdict.json) and its gateway stops. Also:
  health, metrics:  http://127.0.0.1:$PORT/readyz   http://127.0.0.1:$PORT/metrics
  API docs:         http://127.0.0.1:$PORT/docs
  other scenarios:  .venv/bin/telecare simulate list
  verdict JSON:     $RUN/hazelhurst-night.json
Stop it with:  make stop        (and the services with: make services-stop)
MSG

# The verdict stays on the screen until you ask for the control room.
if [[ -t 0 && -t 1 && ${DEMO_TUI:-1} != 0 ]]; then
  creds=$("$BIN/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["credentials"])' \
    "$LIVE/gateway.json" 2>/dev/null || true)
  echo
  read -r -p "Press Enter to open the control room on the live night (q quits it), Ctrl-C to leave it: " _ || exit 0
  if [[ -z $creds ]] || ! alive "$SIM_PID"; then
    echo "demo: the live night has ended; make demo starts another"
    exit 0
  fi
  "$BIN/python" -m dashboard_tui --url "http://127.0.0.1:$PORT" --credentials "$creds"
fi
