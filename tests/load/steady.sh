#!/usr/bin/env bash
# Steady-state CPU per refresh of the standalone host on embedded defaults (in-memory stores, the development signing
# key), and how much of it lies beyond the RS256 signature (issue 28, goal 4). Thread-pool spinning off
# (DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0) as in the other CPU runs: a spinning worker burns CPU while it waits,
# which would count as the request's cost. Request limits off (the passes exceed the per-client minute).
# Each pass is one load-client run: N token exchanges (not counted here), then REFRESHES refreshes of each of the N
# sessions (each presents the refresh token the one before was given), whose host CPU is read from /proc/PID/stat for
# that part alone. Then, in the same round, the load client signs 3,000 inputs with a raw RS256 key on one thread and
# reports the CPU per signature: "beyond the signature" is the host's CPU per refresh minus that, per round.
# OLD=<dir of another build's TokenService.Server.dll> runs that build beside this one: the passes alternate between
# the hosts (the order flips each round), so a busy machine weighs on both alike. The load average is printed with
# every round: the machine may be shared.
# Loopback only, bounded.
# Usage: [WARMUP=logins] [REFRESHES=passes] [OLD=dir] [NO_BUILD=1] bash tests/load/steady.sh [rounds] [sessions per pass] [concurrency]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
rounds="${1:-6}"; requests="${2:-1000}"; concurrency="${3:-8}"
if [ -z "${NO_BUILD:-}" ]; then
  dotnet build -c Release functions/TokenService.Server -v q --nologo >/dev/null
  dotnet build -c Release tests/TokenService.Benchmarks -v q --nologo >/dev/null
fi

# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
trap stop_all EXIT

client=tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll
declare -A dir=([new]="functions/TokenService.Server/bin/Release/net10.0")
[ -n "${OLD:-}" ] && dir[old]="$OLD"
declare -A port=([new]=7211 [old]=7212)
declare -A pid

start_host() { # build
  env ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="http://127.0.0.1:${port[$1]}" Logging__LogLevel__Default=Warning \
    RateLimits__Enabled=false DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 ${HOST_ENV:-} \
    dotnet "${dir[$1]}/TokenService.Server.dll" --urls "http://127.0.0.1:${port[$1]}" \
    --contentRoot "$root/functions/TokenService.Server" >/dev/null 2>&1 &
  pids+=("$!"); pid[$1]="$!"
  wait_for "http://127.0.0.1:${port[$1]}"
}

load() { # build, sessions, refresh passes
  dotnet "$client" load --url "http://127.0.0.1:${port[$1]}" --requests "$2" --refresh-passes "$3" --concurrency "$concurrency" \
    --label "$1" --cpu "host=${pid[$1]}"
}

builds="new"; [ -n "${OLD:-}" ] && builds="old new"
for b in $builds; do start_host "$b"; done
# Warm-up: the first key, connection pools, and the JIT (tiered compilation and PGO recompile hot methods for thousands
# of requests): not counted.
for b in $builds; do load "$b" "${WARMUP:-6000}" 4 >/dev/null; done
rows="$(mktemp)"
echo "| round | build | request | requests | concurrency | p50 ms | p99 ms | req/s | host CPU | load average |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="$builds"; else order="$(echo "$builds" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}')"; fi
  for b in $order; do
    load "$b" "$requests" "${REFRESHES:-4}" | grep '| refresh |' | sed -e 's/host \([0-9.]*\) ms\/req/\1 ms/' \
      -e "s/^/| $round /" -e "s/\$/ $(cut -d' ' -f1 /proc/loadavg) |/" | tee -a "$rows"
  done
  dotnet "$client" sign --count 3000 | sed "s/^/round $round /" | tee -a "$rows"
done
python3 - "$rows" <<'PY'
import statistics, sys
cpu, sign = {}, {}
for line in open(sys.argv[1]):
    if line.startswith("round"):
        parts = line.split()
        sign[parts[1]] = float(parts[3]) / 1000
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    cpu.setdefault(cells[1], {})[cells[0]] = float(cells[8].split()[0])
print()
print("| build | host CPU per refresh, median (min–max) | raw RS256 sign | beyond the signature, median (min–max) |")
print("| --- | --- | --- | --- |")
for build, by_round in cpu.items():
    beyond = [ms - sign[r] for r, ms in by_round.items()]
    print(f"| {build} | {statistics.median(by_round.values()):.3f} ({min(by_round.values()):.3f}–{max(by_round.values()):.3f}) ms "
          f"| {statistics.median(sign.values()):.3f} ms | {statistics.median(beyond):.3f} ({min(beyond):.3f}–{max(beyond):.3f}) ms |")
if len(cpu) == 2:
    old, new = cpu["old"], cpu["new"]
    ratios = sorted(new[r] / old[r] for r in old)
    print()
    print("new/old per round: " + ", ".join(f"{x:.2f}" for x in ratios) + f" (median {statistics.median(ratios):.3f})")
PY
