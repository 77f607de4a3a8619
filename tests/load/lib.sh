# Helpers the load scripts share (sourced, not run): process cleanup, readiness and per-process CPU time.

pids=()

# Stops the processes the script started, last started first, and waits for each: a host flushes what it still holds
# when it stops (telemetry.sh counts on its receiver seeing everything).
stop_all() { for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done; }

# wait_for URL [tries]: until URL/healthz answers 2xx, every 0.2 s (default 100 tries: 20 s).
wait_for() { for _ in $(seq 1 "${2:-100}"); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.2; done; echo "no answer from $1" >&2; return 1; }

# utime + stime of a process, in clock ticks (getconf CLK_TCK per second).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
