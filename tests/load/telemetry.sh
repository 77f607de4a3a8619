#!/usr/bin/env bash
# Throughput of the standalone host (embedded defaults) with telemetry off and on, back to back, alternating the
# order each round so that neither always runs on a warmer machine. "On" exports traces, metrics and logs (the
# audit trail at Information) over OTLP/HTTP to a local stand-in receiver (tests/load/otlp-sink.py).
# Loopback only, bounded. Usage: bash tests/load/telemetry.sh [rounds] [requests] [concurrency]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
rounds="${1:-3}"; requests="${2:-1000}"; concurrency="${3:-8}"
dotnet build -c Release functions/TokenService.Server -v q --nologo >/dev/null
dotnet build -c Release tests/TokenService.Benchmarks -v q --nologo >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

python3 tests/load/otlp-sink.py 14318 &
pids+=("$!")

wait_for() { for _ in $(seq 1 100); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.2; done; echo "no answer from $1" >&2; return 1; }

host_pid=""
start_host() { # port, extra env...
  local port="$1"; shift
  env ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:$port" Logging__LogLevel__Default=Warning \
    "$@" \
    dotnet "functions/TokenService.Server/bin/Release/net10.0/TokenService.Server.dll" --urls "http://127.0.0.1:$port" \
    --contentRoot "$root/functions/TokenService.Server" >/dev/null 2>&1 &
  host_pid="$!"
  pids+=("$host_pid")
  wait_for "http://127.0.0.1:$port"
}

run() { # off|on, port
  if [ "$1" = on ]; then
    start_host "$2" OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
      Logging__OpenTelemetry__LogLevel__TokenService.Audit=Information
  else
    start_host "$2"
  fi
  dotnet tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll load --url "http://127.0.0.1:$2" \
    --requests "$requests" --concurrency "$concurrency" --label "telemetry $1"
  kill "$host_pid"; wait "$host_pid" 2>/dev/null || true
}

echo "| telemetry | request | requests | concurrency | p50 ms | p99 ms | req/s |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
port=7190
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="off on"; else order="on off"; fi
  for mode in $order; do port=$((port + 1)); run "$mode" "$port"; done
done
