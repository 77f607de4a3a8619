#!/usr/bin/env bash
# Bytes the host allocates per steady-state refresh on embedded defaults (a figure the machine's load does not move,
# unlike CPU): for this build and OLD=<dir of another build's TokenService.Server.dll>. After a warm-up, two load-client
# runs of N sessions each, one refreshing each session 2 times and one 10 times, are watched with dotnet-counters
# (dotnet.gc.heap.total_allocated, summed over the run); the difference is 8 × N refreshes, the ID tokens and
# exchanges of the two runs cancelling out. Needs dotnet-counters (COUNTERS=path; `dotnet tool install dotnet-counters`).
# Loopback only, bounded.
# Usage: [OLD=dir] [COUNTERS=path] [WINDOW=seconds, at most 59] bash tests/load/steady-alloc.sh [sessions] [concurrency]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
requests="${1:-500}"; concurrency="${2:-8}"
counters="${COUNTERS:-dotnet-counters}"
# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
trap stop_all EXIT
client=tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll
declare -A dir=([new]="functions/TokenService.Server/bin/Release/net10.0")
[ -n "${OLD:-}" ] && dir[old]="$OLD"
work="$(mktemp -d)"

allocated() { # host pid, refresh passes: bytes the host allocated during one load-client run
  # The collector ends by itself after WINDOW seconds (a killed one leaves the host's metrics session open for a
  # while, and the next collector is refused), and the load client's run must fit inside that window.
  "$counters" collect -p "$1" --counters System.Runtime --refresh-interval 1 --format csv -o "$work/c.csv" \
    --duration "00:00:${WINDOW:-40}" >"$work/collector.log" 2>&1 &
  local collector="$!" started
  sleep 3
  started="$(date +%s)"
  dotnet "$client" load --url "http://127.0.0.1:$port" --requests "$requests" --refresh-passes "$2" --concurrency "$concurrency" >/dev/null
  if [ $(( $(date +%s) - started + 4 )) -ge "${WINDOW:-40}" ]; then echo "the run did not fit in the window: raise WINDOW" >&2; exit 1; fi
  wait "$collector" || { cat "$work/collector.log" >&2; exit 1; }
  awk -F, '/total_allocated/ {s += $5} END {printf "%.0f\n", s}' "$work/c.csv"
}

echo "| build | bytes allocated per refresh |"
echo "| --- | --- |"
port=7251
for b in ${OLD:+old} new; do
  env ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:$port" Logging__LogLevel__Default=Warning \
    RateLimits__Enabled=false DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 \
    dotnet "${dir[$b]}/TokenService.Server.dll" --urls "http://127.0.0.1:$port" --contentRoot "$root/functions/TokenService.Server" >/dev/null 2>&1 &
  pids+=("$!"); host="$!"
  wait_for "http://127.0.0.1:$port"
  dotnet "$client" load --url "http://127.0.0.1:$port" --requests 2000 --refresh-passes 4 --concurrency "$concurrency" >/dev/null
  short="$(allocated "$host" 2)"; long="$(allocated "$host" 10)"
  echo "| $b | $(( (long - short) / (8 * requests) )) |"
  kill "$host"; wait "$host" 2>/dev/null || true
  port=$((port + 1))
done
