#!/usr/bin/env bash
# Issue and refresh latency of the standalone host on embedded defaults and on Azurite Table Storage.
# Loopback only, bounded request counts. Usage: bash tests/load/run.sh [requests] [concurrency]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
requests="${1:-1000}"; concurrency="${2:-8}"
[ -x node_modules/.bin/azurite-table ] || npm ci --no-audit --no-fund --loglevel=error
dotnet build -c Release functions/TokenService.Server -v q --nologo >/dev/null
dotnet build -c Release tests/TokenService.Benchmarks -v q --nologo >/dev/null

# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
trap stop_all EXIT


run_host() { # port, extra env...
  local port="$1"; shift
  # Default request limits (docs/security.md): the load client is one confidential client, charged per client, and
  # its requests fit the default per-client burst (a minute's worth per route), so none is refused; a 429 would
  # make the load client fail.
  env ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:$port" Logging__LogLevel__Default=Warning \
    "$@" \
    dotnet "functions/TokenService.Server/bin/Release/net10.0/TokenService.Server.dll" --urls "http://127.0.0.1:$port" \
    --contentRoot "$root/functions/TokenService.Server" >/dev/null 2>&1 &
  pids+=("$!")
  wait_for "http://127.0.0.1:$port"
}

load() { dotnet tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll load --url "$1" --requests "$requests" --concurrency "$concurrency" --label "$2"; }

echo "| store | request | requests | concurrency | p50 ms | p99 ms | req/s |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
run_host 7181
load http://127.0.0.1:7181 embedded

node_modules/.bin/azurite-table --tableHost 127.0.0.1 --tablePort 10102 --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent >/dev/null 2>&1 &
pids+=("$!")
sleep 2
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
run_host 7182 Storage__TableConnectionString="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;TableEndpoint=http://127.0.0.1:10102/devstoreaccount1;"
load http://127.0.0.1:7182 azurite
