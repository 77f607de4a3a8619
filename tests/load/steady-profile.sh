#!/usr/bin/env bash
# Where a steady-state in-memory refresh's CPU goes: runs the standalone host (this build, or DIR=<another build's
# output>) on embedded defaults with thread-pool spinning off, warms it up, then records it with perf (the JIT's perf map
# on, and W^X off so that perf finds the JIT's code at the addresses the map names) during one load-client run of
# exchanges and REFRESHES refreshes of each session, and prints the share of the host's samples in the refresh pass per
# part of the request (tests/load/steady-profile.py), and ms per refresh from the host's CPU in that pass. Needs perf.
# Loopback only, bounded.
# Usage: [DIR=build dir] [WARMUP=logins] [REFRESHES=passes] bash tests/load/steady-profile.sh [sessions] [concurrency]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
requests="${1:-1000}"; concurrency="${2:-8}"
dir="${DIR:-functions/TokenService.Server/bin/Release/net10.0}"
# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
trap stop_all EXIT
work="$(mktemp -d)"
client=tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll
port=7219
env ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:$port" Logging__LogLevel__Default=Warning \
  RateLimits__Enabled=false DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 \
  dotnet "$dir/TokenService.Server.dll" --urls "http://127.0.0.1:$port" --contentRoot "$root/functions/TokenService.Server" >/dev/null 2>&1 &
pids+=("$!"); host="$!"
wait_for "http://127.0.0.1:$port"
dotnet "$client" load --url "http://127.0.0.1:$port" --requests "${WARMUP:-6000}" --refresh-passes 4 --concurrency "$concurrency" >/dev/null
perf record -q -k mono -F 1999 -g -p "$host" -o "$work/perf.data" 2>/dev/null &
perf_pid="$!"
sleep 1
dotnet "$client" load --url "http://127.0.0.1:$port" --requests "$requests" --refresh-passes "${REFRESHES:-4}" --concurrency "$concurrency" \
  --cpu "host=$host" --phase-times 2>"$work/phases.txt" | tee "$work/load.txt"
kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ms="$(grep '| refresh |' "$work/load.txt" | sed 's/.*host \([0-9.]*\) ms\/req.*/\1/')"
echo
perf script -i "$work/perf.data" -F tid,time,ip,sym,dso 2>/dev/null | python3 tests/load/steady-profile.py "$work/phases.txt" "$ms"
echo "perf data: $work/perf.data" >&2
