#!/usr/bin/env bash
# How fast and at what cost the sample API learns that a session ended, with the Shared Signals receiver off (today's
# introspection with a StatusCacheDuration cache), polling, or taking pushes (docs/shared-signals.md, "What it costs
# and how fast it is"). Per mode: a standalone token service on in-memory stores with the transmitter on, and the
# sample API with SampleApi__SharedSignals__Delivery=<mode>; then
#   - revocation latency (RevocationReach ssf-latency): force logout, IdP account-disabled event, refresh-token reuse;
#     from the answer of the request that ended the session to the API's first 401 for its access token;
#   - introspection load (ssf-load): SESSIONS users call the API every INTERVAL_MS for SECONDS; the introspection
#     requests the token service answered (its tokenservice.tokens.introspected counter, read with dotnet-counters,
#     which the token service's CPU figure includes) and its CPU per API request in that window. LOAD=0 skips it.
# Mode "stopped": the latency rounds with a poll receiver whose stream the transmitter paused once it was healthy (the
# API is not told): the fallback to StatusCacheDuration. Loopback only, bounded.
# Usage: [MODES="none poll push stopped"] [SESSIONS=1000] [SECONDS_=300] [INTERVAL_MS=2000]
#   [ROUNDS=20] [KINDS="force-logout idp-event reuse"] [LOAD=0] [NO_BUILD=1] bash tests/load/ssf.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
dotnet tool restore >/dev/null
if [ -z "${NO_BUILD:-}" ]; then
  dotnet build -c Release functions/TokenService.Server -v q --nologo >/dev/null
  dotnet build -c Release samples/SampleApi -v q --nologo >/dev/null
  dotnet build -c Release tests/TokenService.Benchmarks -v q --nologo >/dev/null
fi

# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
trap stop_all EXIT

client=tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll
sessions="${SESSIONS:-1000}"; seconds="${SECONDS_:-300}"; interval="${INTERVAL_MS:-2000}"; rounds="${ROUNDS:-20}"
log="$(mktemp -d /tmp/ssf-load-XXXX)"
svc=7301; api=7302
hz=$(getconf CLK_TCK)

start_service() {
  env ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:$svc" Logging__LogLevel__Default=Warning \
    RateLimits__Enabled=false SharedSignals__Enabled=true DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 \
    dotnet functions/TokenService.Server/bin/Release/net10.0/TokenService.Server.dll --urls "http://127.0.0.1:$svc" \
    --contentRoot "$root/functions/TokenService.Server" >"$log/service-$1.log" 2>&1 &
  pids+=("$!"); service_pid="$!"
  wait_for "http://127.0.0.1:$svc"
}

start_api() { # mode
  env ASPNETCORE_ENVIRONMENT=Development SampleApi__Authority="http://127.0.0.1:$svc" SampleApi__PublicOrigin="http://127.0.0.1:$api" \
    SampleApi__SharedSignals__Delivery="$1" Logging__LogLevel__Default=Warning \
    dotnet samples/SampleApi/bin/Release/net10.0/SampleApi.dll --urls "http://127.0.0.1:$api" \
    --contentRoot "$root/samples/SampleApi" >"$log/api-$1.log" 2>&1 &
  pids+=("$!"); api_pid="$!"
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$api/orders" && break; sleep 0.2; done
  # A receiver sets its stream up in the background (a verification event makes it healthy within a poll or a push);
  # tokens issued from the sample API's ClockSkew (30 s) after that are not introspected at all (docs/shared-signals.md),
  # so the sign-ins wait that long: the latency rounds' tokens and the load's are all of that kind.
  [ "$1" = none ] || sleep "${RECEIVER_SETTLE_SECONDS:-35}"
}

# The introspections the token service answered in the load window: its tokenservice.tokens.introspected counter
# (docs/operations.md), read with dotnet-counters (a local tool: dotnet tool restore) as one increment per second.
introspections() { awk -F, '/tokenservice.tokens.introspected/ { n += $NF } END { printf "%d", n }' "$1"; }

echo "| mode | ended by | rounds | p50 ms | p99 ms | max ms | not refused in 60 s |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
# pause_streams: the receiver's streams paused at the transmitter (SSF 1.0 §8.1.2.2), as the operator or an outage would
# stop delivery; the API is not told.
pause_streams() {
  for id in $(curl -s -u dev-api:dev-api-secret "http://127.0.0.1:$svc/ssf/streams" \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(s["stream_id"] for s in (d if isinstance(d, list) else [d])))'); do
    curl -s -o /dev/null -w '' -u dev-api:dev-api-secret -H 'Content-Type: application/json' \
      -d "{\"stream_id\":\"$id\",\"status\":\"paused\",\"reason\":\"tests/load/ssf.sh\"}" "http://127.0.0.1:$svc/ssf/streams/status"
  done
}

for mode in ${MODES:-none poll push stopped}; do
  # stopped: a poll receiver whose stream is paused once it is healthy: the fallback to StatusCacheDuration.
  delivery="$mode"; [ "$mode" = stopped ] && delivery=poll
  start_service "$mode"; start_api "$delivery"
  [ "$mode" = stopped ] && pause_streams
  for kind in ${KINDS-force-logout idp-event reuse}; do
    dotnet "$client" ssf-latency --service "http://127.0.0.1:$svc" --api "http://127.0.0.1:$api" --rounds "$rounds" --parallel "$rounds" \
      --kind "$kind" --label "$mode" || true
  done
  if [ "$mode" = stopped ] || [ "${LOAD:-1}" = 0 ]; then
    kill "$api_pid" "$service_pid" 2>/dev/null || true; wait "$api_pid" "$service_pid" 2>/dev/null || true
    continue
  fi
  # The introspections are counted from before the first sign-in until the token service stops (sign-in introspects
  # nothing); dotnet-counters ends with the process it watches (a background job of a script ignores Ctrl+C's signal).
  dotnet tool run dotnet-counters -- collect -p "$service_pid" --counters TokenService --format csv -o "$log/counters-$mode.csv" \
    --refresh-interval 1 >/dev/null 2>&1 &
  counters=$!
  for _ in $(seq 1 100); do [ -f "$log/counters-$mode.csv" ] && [ "$(wc -l <"$log/counters-$mode.csv")" -ge 2 ] && break; sleep 0.2; done
  dotnet "$client" ssf-load --service "http://127.0.0.1:$svc" --api "http://127.0.0.1:$api" --sessions "$sessions" --seconds "$seconds" \
    --interval-ms "$interval" >"$log/load-$mode.out" 2>"$log/load-$mode.err" &
  loader=$!
  until grep -q calls-start "$log/load-$mode.err" 2>/dev/null; do kill -0 "$loader" 2>/dev/null || break; sleep 0.1; done
  c0=$(cpu_ticks "$service_pid"); a0=$(cpu_ticks "$api_pid")
  wait "$loader" || true
  c1=$(cpu_ticks "$service_pid"); a1=$(cpu_ticks "$api_pid")
  kill "$api_pid" "$service_pid" 2>/dev/null || true; wait "$api_pid" "$service_pid" "$counters" 2>/dev/null || true
  calls=$(sed -n 's/.*api_requests=\([0-9]*\).*/\1/p' "$log/load-$mode.out"); refused=$(sed -n 's/.*refused=\([0-9]*\).*/\1/p' "$log/load-$mode.out")
  printf 'load %s: %s sessions, %s s, %s API requests (%s refused), %s introspections, token service CPU %s ms per API request, API CPU %s ms per request\n' \
    "$mode" "$sessions" "$seconds" "$calls" "$refused" "$(introspections "$log/counters-$mode.csv")" \
    "$(awk -v d=$((c1 - c0)) -v n="$calls" -v hz="$hz" 'BEGIN{printf "%.4f", d*1000/hz/n}')" \
    "$(awk -v d=$((a1 - a0)) -v n="$calls" -v hz="$hz" 'BEGIN{printf "%.4f", d*1000/hz/n}')" >>"$log/summary"
done
[ -f "$log/summary" ] && cat "$log/summary"
echo "logs: $log"
