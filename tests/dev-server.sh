# Sourced by tests/fuzz.sh and tests/readme.sh: starts the debug dev server on a free loopback
# port with the environment given as NAME=value arguments, its output in $1, and waits until it has
# printed its credentials. Sets `port` and `pid`; the caller's EXIT trap stops it (`stop_dev_server`).
start_dev_server() {
  local log=$1
  shift
  local server="${CARGO_TARGET_DIR:-$root/target}/debug/billflow-dev"
  [ -x "$server" ] || { echo "$server is not built: run 'cargo build --workspace --all-targets'" >&2; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  env PORT="$port" WORKER_STEP_DELAY_MS=0 "$@" "$server" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    grep -q '^press Ctrl-C' "$log" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the dev server did not start; its log:" >&2
  cat "$log" >&2
  exit 1
}

stop_dev_server() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
