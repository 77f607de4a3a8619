#!/usr/bin/env bash
# Throughput of the standalone host (embedded defaults) with telemetry off and on. Both hosts run side by side for
# the whole measurement and the load client alternates between them in short passes (the order flips each round),
# so that the load of a shared machine falls on both alike; the summary is the median of each mode and of the
# per-round on/off ratios, and the CPU time each host process used for the measured passes (from /proc, so other
# work on the machine does not count), which is the steadier figure on a shared machine. "On" exports traces, metrics and logs (the audit trail at Information) over OTLP/HTTP to
# a local stand-in receiver (tests/load/otlp-sink.py). Loopback only, bounded.
# Usage: [WARMUP=logins] bash tests/load/telemetry.sh [rounds] [requests per pass] [concurrency]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
rounds="${1:-10}"; requests="${2:-1000}"; concurrency="${3:-8}"
dotnet build -c Release functions/TokenService.Server -v q --nologo >/dev/null
dotnet build -c Release tests/TokenService.Benchmarks -v q --nologo >/dev/null

# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
# stop_all stops the hosts before the receiver, last started first, and waits for each: a host flushes what it still
# holds when it stops, so the receiver's counts at the end show every span and log record of the run arrived.
trap stop_all EXIT

python3 tests/load/otlp-sink.py 14318 &
pids+=("$!")


start_host() { # port, extra env...
  local port="$1"; shift
  # Request limits off in both: the hosts live for every pass, and the passes together exceed the per-client minute.
  env ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:$port" Logging__LogLevel__Default=Warning RateLimits__Enabled=false \
    "$@" \
    dotnet "functions/TokenService.Server/bin/Release/net10.0/TokenService.Server.dll" --urls "http://127.0.0.1:$port" \
    --contentRoot "$root/functions/TokenService.Server" >/dev/null 2>&1 &
  pids+=("$!")
  host_pid="$!"
  wait_for "http://127.0.0.1:$port"
}


declare -A port=([off]=7191 [on]=7192)
declare -A pid
start_host "${port[off]}"; pid[off]="$host_pid"
# ON_ENV replaces the "on" host's settings (e.g. ON_ENV=NONE=1 for an A/A run that shows the method's noise).
# shellcheck disable=SC2086
start_host "${port[on]}" ${ON_ENV:-OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_METRIC_EXPORT_INTERVAL=5000 Logging__OpenTelemetry__LogLevel__TokenService.Audit=Information}
pid[on]="$host_pid"

load() { # mode, requests
  dotnet tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll load --url "http://127.0.0.1:${port[$1]}" \
    --requests "$2" --concurrency "$concurrency" --label "telemetry $1"
}

# Warm-up (first key, connection pools, and the JIT: tiered compilation keeps recompiling hot methods for thousands of
# requests, and the "on" host has more of them, so a short warm-up counts compilation as telemetry's cost): not counted.
warmup="${WARMUP:-16000}"
load off "$warmup" >/dev/null; load on "$warmup" >/dev/null

rows="$(mktemp)"
declare -A cpu_before
for mode in off on; do cpu_before[$mode]="$(cpu_ticks "${pid[$mode]}")"; done
echo "| telemetry | request | requests | concurrency | p50 ms | p99 ms | req/s |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="off on"; else order="on off"; fi
  for mode in $order; do load "$mode" "$requests" | sed "s/^/$round /" >>"$rows"; done
done
echo "logins through the \"on\" host: $((warmup + rounds * requests)) (3 requests, 2 token-endpoint spans and 1 audit record each)" >&2
sleep 6 # one more export interval of the "on" host (5 s batches), so that its exporting is counted too
cpu_off=$(( $(cpu_ticks "${pid[off]}") - cpu_before[off] )); cpu_on=$(( $(cpu_ticks "${pid[on]}") - cpu_before[on] ))
sed 's/^[0-9]* //' "$rows"
python3 - "$rows" "$cpu_off" "$cpu_on" "$(getconf CLK_TCK)" "$((rounds * requests))" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    parts = [p.strip() for p in line.split("|")]
    rnd, mode, kind, rps = parts[0], parts[1].split()[-1], parts[2], float(parts[7])
    runs.setdefault(kind, {}).setdefault(rnd, {})[mode] = rps
print()
print("| request | median req/s off | median req/s on | median of per-round on/off | rounds |")
print("| --- | --- | --- | --- | --- |")
for kind, by_round in runs.items():
    off = [r["off"] for r in by_round.values()]
    on = [r["on"] for r in by_round.values()]
    ratio = statistics.median(r["on"] / r["off"] for r in by_round.values())
    print(f"| {kind} | {statistics.median(off):.0f} | {statistics.median(on):.0f} | {ratio:.3f} | {len(by_round)} |")
cpu_off, cpu_on, tck, logins = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print()
print("| host CPU per login (ID token + issue + refresh) | off | on | on/off |")
print("| --- | --- | --- | --- |")
per = lambda ticks: ticks * 1000.0 / tck / logins
print(f"| ms | {per(cpu_off):.3f} | {per(cpu_on):.3f} | {cpu_on / cpu_off:.3f} |")
PY
