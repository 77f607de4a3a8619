#!/usr/bin/env bash
# What the Azure Functions host costs: token exchange + refresh on Azurite Table Storage through the
# standalone host and through the Functions app under a real Functions host, side by side in one run. Both read and
# write the same Azurite (one table account, the Functions host's blobs and queues beside it); the load client
# alternates between them in passes (the order flips each round) so that the load of a shared machine falls on both
# alike. Reported: throughput, and the CPU time of each process for the measured passes (from /proc, so other work on
# the machine does not count): the standalone host; under the Functions host, the worker (the app's own process, where
# the same endpoint code runs) and the host process (its Kestrel, its proxy to the worker, its trigger bookkeeping and
# logs), each per login (one ID token from the development IdP, one exchange, one refresh: 3 requests).
# Loopback only, bounded. Needs ../shared/functions-host (or `func` on PATH) and Azurite from npm.
# Usage: [WARMUP=logins] [HOST_LOG_LEVEL=Information|Warning] bash tests/load/functions-host.sh [rounds] [logins per pass] [concurrency]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
rounds="${1:-6}"; requests="${2:-500}"; concurrency="${3:-8}"
[ -x node_modules/.bin/azurite ] || npm ci --no-audit --no-fund --loglevel=error
run_sh="$root/../shared/functions-host/run.sh"
if command -v func >/dev/null; then launcher=func
elif [ -f "$run_sh" ]; then launcher="$run_sh"
else echo "neither func nor ../shared/functions-host/run.sh: nothing to measure the Functions host with" >&2; exit 1; fi

work="$(mktemp -d)"
dotnet build -c Release functions/TokenService.Server -v q --nologo >/dev/null
dotnet build -c Release tests/TokenService.Benchmarks -v q --nologo >/dev/null
bash scripts/func-start.sh --prepare-only --output "$work/app" >/dev/null

# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT

# One Azurite with all three services on ports of its own (a developer's Azurite on 10000-10002 is left alone).
node_modules/.bin/azurite --blobHost 127.0.0.1 --blobPort 10120 --queueHost 127.0.0.1 --queuePort 10121 \
  --tableHost 127.0.0.1 --tablePort 10122 --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent \
  >"$work/azurite.log" 2>&1 &
pids+=("$!")
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
storage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:10120/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10121/devstoreaccount1;TableEndpoint=http://127.0.0.1:10122/devstoreaccount1;"


declare -A port=([standalone]=7193 [functions]=7194)
declare -A pid

# Request limits off in both: the hosts live for every pass, and the passes together exceed the per-client minute.
env ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:${port[standalone]}" Logging__LogLevel__Default=Warning \
  RateLimits__Enabled=false Storage__TableConnectionString="$storage" \
  dotnet functions/TokenService.Server/bin/Release/net10.0/TokenService.Server.dll --urls "http://127.0.0.1:${port[standalone]}" \
  --contentRoot "$root/functions/TokenService.Server" >"$work/standalone.log" 2>&1 &
pids+=("$!"); pid[standalone]="$!"

# The run folder's local.settings.json, as README's "Run the Functions app locally" uses it, with the same changes.
python3 - "$work/app/local.settings.json" "$storage" "${port[functions]}" "${HOST_LOG_LEVEL:-}" "$work/app/host.json" <<'PY'
import json, sys
path, storage, port, level, host_json = sys.argv[1:6]
s = json.load(open(path))
s["Values"].update({"AzureWebJobsStorage": storage, "Storage__TableConnectionString": storage,
                    "TokenService__Issuer": f"http://127.0.0.1:{port}", "RateLimits__Enabled": "false",
                    "Logging__LogLevel__Default": "Warning"})
json.dump(s, open(path, "w"), indent=1)
if level:  # HOST_LOG_LEVEL: the host's own log level (host.json), to show what the host's per-request logs cost
    h = json.load(open(host_json))
    h["logging"]["logLevel"] = {"default": level, "Function": level}
    json.dump(h, open(host_json, "w"), indent=1)
PY
if [ "$launcher" = func ]; then (cd "$work/app" && exec func start --no-build --port "${port[functions]}") >"$work/functions.log" 2>&1 &
else "$launcher" "$work/app" "${port[functions]}" >"$work/functions.log" 2>&1 & fi
pids+=("$!"); pid[host]="$!"

wait_for "http://127.0.0.1:${port[standalone]}" 600 || { tail -40 "$work/standalone.log" >&2; exit 1; }
wait_for "http://127.0.0.1:${port[functions]}" 600 || { tail -40 "$work/functions.log" >&2; exit 1; }
# The worker is the host's child process that runs the app (func start: a grandchild under its own host process).
pid[worker]="$(pgrep -f "$work/app/TokenFunctions.dll" | head -1)"
[ "$launcher" = func ] && pid[host]="$(ps -o ppid= -p "${pid[worker]}" | tr -d ' ')"
[ -n "${pid[worker]}" ] || { echo "no worker process found" >&2; exit 1; }

load() { # target, logins
  dotnet tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll load --url "http://127.0.0.1:${port[$1]}" \
    --requests "$2" --concurrency "$concurrency" --label "$1"
}

# Warm-up: the first key, connection pools, the tables, and the JIT (tiered compilation recompiles hot methods for
# thousands of requests): not counted.
warmup="${WARMUP:-3000}"
load standalone "$warmup" >/dev/null; load functions "$warmup" >/dev/null

rows="$(mktemp)"
declare -A before
for p in standalone worker host; do before[$p]="$(cpu_ticks "${pid[$p]}")"; done
echo "| host | request | logins | concurrency | p50 ms | p99 ms | req/s |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="standalone functions"; else order="functions standalone"; fi
  for target in $order; do load "$target" "$requests" | sed "s/^/$round /" >>"$rows"; done
done
declare -A used
for p in standalone worker host; do used[$p]=$(( $(cpu_ticks "${pid[$p]}") - before[$p] )); done
sed 's/^[0-9]* //' "$rows"
python3 - "$rows" "${used[standalone]}" "${used[worker]}" "${used[host]}" "$(getconf CLK_TCK)" "$((rounds * requests))" <<'PY'
import statistics, sys
rows, standalone, worker, host, hz, logins = sys.argv[1], *map(int, sys.argv[2:])
runs = {}
for line in open(rows):
    parts = [p.strip() for p in line.split("|")]
    rnd, target, kind, rps = parts[0], parts[1].split()[-1], parts[2], float(parts[7])
    runs.setdefault(kind, {}).setdefault(rnd, {})[target] = rps
print()
print("| request | median req/s standalone | median req/s Functions host | median of per-round ratios |")
print("| --- | --- | --- | --- |")
for kind, by_round in runs.items():
    s = [r["standalone"] for r in by_round.values()]; f = [r["functions"] for r in by_round.values()]
    ratios = [r["functions"] / r["standalone"] for r in by_round.values()]
    print(f"| {kind} | {statistics.median(s):.0f} | {statistics.median(f):.0f} | {statistics.median(ratios):.2f} |")
ms = lambda ticks: ticks * 1000.0 / hz / logins
print()
print(f"CPU per login ({logins} logins of 3 requests each): standalone {ms(standalone):.2f} ms; Functions worker "
      f"{ms(worker):.2f} ms ({worker / standalone:.2f}x), Functions host process {ms(host):.2f} ms, worker + host "
      f"{ms(worker + host):.2f} ms ({(worker + host) / standalone:.2f}x)")
PY
