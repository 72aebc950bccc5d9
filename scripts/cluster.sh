#!/usr/bin/env bash
# A local cluster on this machine, for tests and benchmarks: N API processes sharing one port (SO_REUSEPORT; the
# kernel spreads connections), M verification workers and two schedulers (one leads, the other stands by), all on one
# database (MONITOR_DATABASE_URL, else the data directory's SQLite) and one Redis (MONITOR_REDIS_URL, else a
# redis-server started here on a free port). Ctrl-C (or SIGTERM) stops them all.
#
#   scripts/cluster.sh [--api N] [--workers M] [--port P] [--data-dir DIR] [--pin]
#
#   --pin   pin each role to a core with taskset (API processes from core 0 up, workers from the last core down),
#           so that scaling is measured, not shared
set -euo pipefail
cd "$(dirname "$0")/.."
api=2 workers=1 port=${MONITOR_PORT:-8000} data_dir=${MONITOR_DATA_DIR:-data} pin=0
while [ $# -gt 0 ]; do
  case "$1" in
    --api) shift; api=$1 ;;
    --workers) shift; workers=$1 ;;
    --port) shift; port=$1 ;;
    --data-dir) shift; data_dir=$1 ;;
    --pin) pin=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see $0 --help)" >&2; exit 2 ;;
  esac
  shift
done
monitor=.venv/bin/monitor
[ -x "$monitor" ] || { echo "run ./scripts/setup.sh first (no .venv/bin/monitor)" >&2; exit 1; }
export MONITOR_DATA_DIR=$data_dir
pids=()
stop() { trap - EXIT INT TERM; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; }
trap stop EXIT INT TERM
if [ -z "${MONITOR_REDIS_URL:-}" ]; then
  redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  pids+=($!)
  export MONITOR_REDIS_URL=redis://127.0.0.1:$redis_port/0
fi
cores=$(nproc)
on_core() {  # run "$@" pinned to core $1 when --pin
  local core=$1; shift
  if [ "$pin" = 1 ]; then taskset -c "$((core % cores))" "$@"; else "$@"; fi
}
"$monitor" migrate >/dev/null
for i in $(seq 0 $((api - 1))); do
  on_core "$i" "$monitor" serve --no-worker --reuse-port --port "$port" &
  pids+=($!)
done
for j in $(seq 0 $((workers - 1))); do
  on_core "$((cores - 1 - j))" "$monitor" worker --no-scheduler &
  pids+=($!)
done
for k in 1 2; do
  "$monitor" scheduler &
  pids+=($!)
done
echo "cluster: $api API process(es) on port $port, $workers worker(s), 2 schedulers; Redis $MONITOR_REDIS_URL;" \
     "data $data_dir${MONITOR_DATABASE_URL:+ (database $MONITOR_DATABASE_URL)}"
wait -n || true
echo "a cluster process exited; stopping the others" >&2
