#!/usr/bin/env bash
# Server CPU per request of the standalone host on Table Storage (Azurite): token exchange, refresh and introspection,
# with the table preloaded with N sessions, so that a run at 1k and one at 100k show whether the cost grows with the
# table. Each size gets a fresh in-memory Azurite. The load client reads the CPU each process used during each pass
# alone (/proc/PID/stat): the host and Azurite. Thread-pool spinning is off in the host
# (DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0): a spinning worker burns CPU while it waits for Azurite, which would
# count as the request's cost. Request limits off (the passes exceed the per-client minute).
# A host of this build on in-memory stores ("memory") runs beside it as the reference, and OLD=<dir of another build's
# TokenService.Server.dll> runs that build on the same Azurite too, for a before/after in one run: the load client
# alternates between the hosts pass by pass (the order flips each round), so a busy machine weighs on all alike.
# USERS=N signs in returning users of a pool of N instead of a new user per exchange (each host then allows
# MAX_SESSIONS, default 10, sessions per user), so that Azurite's user rows stop growing from pass to pass: Azurite finds
# a user row by scanning all of them, and its slower answers cost the host CPU too (docs/performance.md). Each host
# signs in a pool of its own (one instance per user, as where one instance serves all); SHARED_USERS=1 gives them one
# pool, so that the hosts on Azurite take turns with each user like instances of a scaled-out app without affinity.
# Loopback only, bounded.
# Usage: [PRELOAD="1000 100000"] [WARMUP=requests] [OLD=dir] [USERS=N [MAX_SESSIONS=n] [SHARED_USERS=1]] [NO_BUILD=1] bash tests/load/table.sh [rounds] [requests per pass] [concurrency]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
rounds="${1:-4}"; requests="${2:-2000}"; concurrency="${3:-8}"
[ -x node_modules/.bin/azurite-table ] || npm ci --no-audit --no-fund --loglevel=error
if [ -z "${NO_BUILD:-}" ]; then
  dotnet build -c Release functions/TokenService.Server -v q --nologo >/dev/null
  dotnet build -c Release tests/TokenService.Benchmarks -v q --nologo >/dev/null
fi

# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
trap stop_all EXIT

client=tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
declare -A dir=([new]="functions/TokenService.Server/bin/Release/net10.0" [memory]="functions/TokenService.Server/bin/Release/net10.0")
[ -n "${OLD:-}" ] && dir[old]="$OLD"
declare -A port=([new]=7201 [old]=7202 [memory]=7203)
declare -A pid

start_host() { # build, connection string (empty: in-memory stores)
  env ${2:+Storage__TableConnectionString="$2"} ${USERS:+TokenService__MaxSessionsPerUser=${MAX_SESSIONS:-10}} ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:${port[$1]}" Logging__LogLevel__Default=Warning \
    RateLimits__Enabled=false DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 \
    dotnet "${dir[$1]}/TokenService.Server.dll" --urls "http://127.0.0.1:${port[$1]}" \
    --contentRoot "$root/functions/TokenService.Server" >/dev/null 2>&1 &
  pids+=("$!"); pid[$1]="$!"
  wait_for "http://127.0.0.1:${port[$1]}"
}

load() { # build, requests
  local pool="load-pool-$1"; [ -n "${SHARED_USERS:-}" ] && pool="load-pool-shared"
  dotnet "$client" load --url "http://127.0.0.1:${port[$1]}" --requests "$2" --concurrency "$concurrency" --introspect ${USERS:+--users "$USERS" --pool "$pool"} \
    --label "$1 $sessions" --cpu "host=${pid[$1]},azurite=$azurite"
}

builds="memory new"; [ -n "${OLD:-}" ] && builds="memory old new"
echo "| build, preloaded sessions | request | requests | concurrency | p50 ms | p99 ms | req/s | host CPU | Azurite CPU |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for sessions in ${PRELOAD:-1000 100000}; do
  tport=$((10110 + RANDOM % 100))
  node_modules/.bin/azurite-table --tableHost 127.0.0.1 --tablePort "$tport" --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent >/dev/null 2>&1 &
  pids+=("$!"); azurite="$!"
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$tport/" && break; sleep 0.2; done # any answer: it listens
  connection="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;TableEndpoint=http://127.0.0.1:$tport/devstoreaccount1;"
  dotnet "$client" preload --connection "$connection" --sessions "$sessions"
  for b in $builds; do if [ "$b" = memory ]; then start_host "$b" ""; else start_host "$b" "$connection"; fi; done
  # Warm-up: connections, the first key, and the JIT (tiered compilation recompiles hot methods for thousands of
  # requests): not counted.
  for b in $builds; do load "$b" "${WARMUP:-6000}" >/dev/null; done
  for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then order="$builds"; else order="$(echo "$builds" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}')"; fi
    for b in $order; do load "$b" "$requests" | sed -e 's/host \([0-9.]*\) ms\/req/\1 ms/' -e 's/azurite \([0-9.]*\) ms\/req/\1 ms/'; done
  done
  for b in $builds; do kill "${pid[$b]}"; wait "${pid[$b]}" 2>/dev/null || true; done
  kill "$azurite"; wait "$azurite" 2>/dev/null || true
done
