#!/usr/bin/env bash
# Where the Table path's CPU goes: runs the standalone host (this build, or DIR=<another build's output>) on a fresh
# in-memory Azurite with thread-pool spinning off, warms it up, then records it with perf (the JIT's perf map on, and
# W^X off so that perf finds the JIT's code at the addresses the map names) during one load-client run of exchange,
# refresh and introspection, and prints the share of the host's samples per part of the path for each request kind
# (tests/load/table-profile.py). Needs perf. Loopback only, bounded.
# Usage: [DIR=build dir] [WARMUP=requests] bash tests/load/table-profile.sh [requests] [concurrency]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
requests="${1:-3000}"; concurrency="${2:-8}"
dir="${DIR:-functions/TokenService.Server/bin/Release/net10.0}"
# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
trap stop_all EXIT
work="$(mktemp -d)"
client=tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
tport=10109; port=7209
node_modules/.bin/azurite-table --tableHost 127.0.0.1 --tablePort "$tport" --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent >/dev/null 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$tport/" && break; sleep 0.2; done
env ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:$port" Logging__LogLevel__Default=Warning \
  RateLimits__Enabled=false DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 \
  Storage__TableConnectionString="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;TableEndpoint=http://127.0.0.1:$tport/devstoreaccount1;" \
  dotnet "$dir/TokenService.Server.dll" --urls "http://127.0.0.1:$port" --contentRoot "$root/functions/TokenService.Server" >/dev/null 2>&1 &
pids+=("$!"); host="$!"
wait_for "http://127.0.0.1:$port"
dotnet "$client" load --url "http://127.0.0.1:$port" --requests "${WARMUP:-6000}" --concurrency "$concurrency" --introspect >/dev/null
perf record -q -k mono -F 1999 -g -p "$host" -o "$work/perf.data" 2>/dev/null &
perf_pid="$!"
sleep 1
dotnet "$client" load --url "http://127.0.0.1:$port" --requests "$requests" --concurrency "$concurrency" --introspect \
  --cpu "host=$host" --phase-times 2>"$work/phases.txt"
kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
echo
perf script -i "$work/perf.data" -F tid,time,ip,sym,dso 2>/dev/null | python3 tests/load/table-profile.py "$work/phases.txt"
echo "perf data: $work/perf.data" >&2
