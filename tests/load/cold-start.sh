#!/usr/bin/env bash
# Cold start: the time from process start to the first successful token exchange, and the CPU time
# of the first requests (JIT and tiering), for the standalone host (functions/TokenService.Server, published Release)
# and for the Functions app under a real Functions host (scripts/func-start.sh --prepare-only, Azurite for
# AzureWebJobsStorage). Flex Consumption starts an instance at every scale-out, so this is paid each time.
#
# Each variant is a publish of both apps plus runtime settings written into their runtimeconfig.json (what the MSBuild
# properties TieredPGO, TieredCompilation and TieredCompilationQuickJitForLoops write, so only the app's own process
# changes, never the Functions host's):
#   jit       dotnet publish -c Release -p:PublishReadyToRun=false, as func-start.sh published before this issue
#   r2r       + -r linux-x64 --self-contained false -p:PublishReadyToRun=true (ahead-of-time code for our assemblies
#             and the packages; the shared framework is ReadyToRun already)
#   <base>-nopgo / -tc-off / -noqjfl   TieredPGO off / TieredCompilation off / QuickJitForLoops off, on <base>
# The rounds alternate the variants (the order flips each round) so that the load of a shared machine falls on all.
# Measured per start: ms from launch to the first 200 of oauth2/token (token exchange with an ID token of the
# development IdP, client dev-confidential), CPU ms of the app's process until then, and CPU ms of the next
# REQUESTS requests (logins of the load client: ID token, exchange, refresh). Under the Functions host: the worker
# (the app's process) and the host process apart. CPU from /proc (lib.sh's cpu_ticks), so other work does not count.
# Both apps use the in-memory stores (no Storage__TableConnectionString): start-up and JIT, not Table Storage.
# Loopback only, bounded; everything started here is stopped on exit (process groups: host, worker, Azurite).
# Usage: [VARIANTS="jit r2r"] [REQUESTS=10000] [HOSTS="standalone functions"] bash tests/load/cold-start.sh [rounds]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
rounds="${1:-5}"; requests="${REQUESTS:-10000}"; variants=(${VARIANTS:-jit r2r}); hosts=(${HOSTS:-standalone functions})
logins=$(((requests + 2) / 3))
[ -x node_modules/.bin/azurite ] || npm ci --no-audit --no-fund --loglevel=error
run_sh="$root/../shared/functions-host/run.sh"
[ -f "$run_sh" ] || { echo "no ../shared/functions-host/run.sh: nothing to run the Functions app under" >&2; exit 1; }

# shellcheck source=tests/load/lib.sh
source "$root/tests/load/lib.sh"
work="$(mktemp -d)"
groups=()  # process groups started here (setsid): a host and the worker it started, Azurite and its children
kill_groups() { for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done; groups=(); }
cleanup() { kill_groups; stop_all; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
tick_ms=$((1000 / $(getconf CLK_TCK)))

# ---- publish: one folder per publish kind, copied per variant with its runtime settings ---------------------------
dotnet build -c Release tests/TokenService.Benchmarks -v q --nologo >/dev/null
publish() { # kind (jit|r2r), app (standalone|functions), output
  local flags=(-p:PublishReadyToRun=false)
  [ "$1" = r2r ] && flags=(-r linux-x64 --self-contained false -p:PublishReadyToRun=true)
  if [ "$2" = standalone ]; then
    dotnet publish functions/TokenService.Server -c Release "${flags[@]}" -o "$3" --nologo -v q >/dev/null
  else
    # What scripts/func-start.sh --prepare-only publishes (it adds only local.settings.json, written below).
    dotnet publish functions/TokenFunctions/TokenFunctions.csproj -c Release "${flags[@]}" -o "$3" --nologo -v q >/dev/null
  fi
}
# PUBLISH_DIR keeps the publishes between runs (one is made only where its folder has no app yet).
pub="${PUBLISH_DIR:-$work/pub}"
declare -A published
for v in "${variants[@]}"; do
  kind="${v%%-*}"
  for h in "${hosts[@]}"; do
    dll=TokenService.Server; [ "$h" = functions ] && dll=TokenFunctions
    if [ -z "${published[$kind/$h]:-}" ] && [ ! -f "$pub/$kind/$h/$dll.dll" ]; then
      echo "== publish $kind $h" >&2
      publish "$kind" "$h" "$pub/$kind/$h"
      published[$kind/$h]=1
    fi
    cp -r "$pub/$kind/$h" "$work/$v-$h"
    rm -rf "$work/$v-$h/keys"  # a key made by an earlier run of this folder
    knobs='{}'
    case "$v" in
      *-nopgo) knobs='{"System.Runtime.TieredPGO": false}' ;;
      *-tc-off) knobs='{"System.Runtime.TieredCompilation": false}' ;;
      *-noqjfl) knobs='{"System.Runtime.TieredCompilation.QuickJitForLoops": false}' ;;
    esac
    rc="$work/$v-$h/$dll.runtimeconfig.json"
    jq --argjson k "$knobs" '.runtimeOptions.configProperties += $k' "$rc" >"$rc.new" && mv "$rc.new" "$rc"
  done
done

# ---- Azurite: blobs and queues for the Functions host (its timers and secrets) -------------------------------------
blob="$(free_port)"; queue="$(free_port)"; table="$(free_port)"
setsid node_modules/.bin/azurite --blobHost 127.0.0.1 --blobPort "$blob" --queueHost 127.0.0.1 --queuePort "$queue" \
  --tableHost 127.0.0.1 --tablePort "$table" --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent \
  >"$work/azurite.log" 2>&1 </dev/null &
azurite_group=$!; pids+=("$azurite_group")
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
storage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue/devstoreaccount1;TableEndpoint=http://127.0.0.1:$table/devstoreaccount1;"
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$queue") 2>/dev/null && break; sleep 0.2; done

# ---- one start ----------------------------------------------------------------------------------------------------
# Prints: variant host start_ms app_cpu_ms_at_first_exchange app_cpu_ms_requests host_cpu_ms_at_first host_cpu_ms_requests
measure() { # variant, host
  local dir="$work/$1-$2" port url start app_pid host_pid="" id body ready=0 t0 a0 h0 a1 h1
  port="$(free_port)"; url="http://127.0.0.1:$port"; mkdir -p "$work/keys/$1-$2"
  # The signing key is made once per folder (the first, unmeasured start) and read afterwards, as in production.
  if [ "$2" = standalone ]; then
    start="$(now_ms)"
    ASPNETCORE_ENVIRONMENT=Development TokenService__Issuer="$url" Logging__LogLevel__Default=Warning \
      RateLimits__Enabled=false Keys__DevelopmentKeyPath="$work/keys/$1-$2/signing-keys.json" \
      setsid dotnet "$dir/TokenService.Server.dll" --urls "$url" --contentRoot "$dir" >"$work/run.log" 2>&1 </dev/null &
    app_pid=$!; groups+=("$app_pid"); disown "$app_pid"
  else
    jq --arg url "$url" --arg storage "$storage" --arg keys "$work/keys/$1-$2/signing-keys.json" \
      '.Values.TokenService__Issuer = $url | .Values.AzureWebJobsStorage = $storage | del(.Values.Storage__TableConnectionString) | .Values.Keys__DevelopmentKeyPath = $keys | .Values.RateLimits__Enabled = "false" | .Values.Logging__LogLevel__Default = "Warning"' \
      local.settings.sample.json >"$dir/local.settings.json"
    start="$(now_ms)"
    (cd "$dir" && exec setsid bash "$run_sh" "$dir" "$port") >"$work/run.log" 2>&1 </dev/null &
    host_pid=$!; groups+=("$host_pid"); disown "$host_pid"
  fi
  # The first exchange: an ID token, then oauth2/token, retried every 20 ms until it answers 200 (at most 120 s).
  for _ in $(seq 1 6000); do
    if id="$(curl -sf -X POST "$url/dev-idp/id-token" -d sub=alice 2>/dev/null | jq -r .id_token 2>/dev/null)" && [ -n "$id" ] &&
      curl -sf -o /dev/null -u dev-confidential:dev-confidential-secret "$url/oauth2/token" \
        -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d "subject_token=$id" \
        -d subject_token_type=urn:ietf:params:oauth:token-type:id_token 2>/dev/null; then
      ready=1; break
    fi
    sleep 0.02
  done
  t0="$(now_ms)"
  if [ "$ready" -eq 0 ]; then echo "$1 $2: no token exchange in 120 s; its log:" >&2; tail -30 "$work/run.log" >&2; kill_groups; return 1; fi
  [ "$2" = functions ] && app_pid="$(pgrep -f "$dir/TokenFunctions.dll" | head -1)"
  [ -n "$app_pid" ] || { echo "$1 $2: no app process found" >&2; kill_groups; return 1; }
  a0="$(cpu_ticks "$app_pid")"; h0=0; [ -n "$host_pid" ] && h0="$(cpu_ticks "$host_pid")"
  dotnet tests/TokenService.Benchmarks/bin/Release/net10.0/TokenService.Benchmarks.dll load --url "$url" \
    --requests "$logins" --concurrency 8 --label "$1 $2" >/dev/null
  a1="$(cpu_ticks "$app_pid")"; h1=0; [ -n "$host_pid" ] && h1="$(cpu_ticks "$host_pid")"
  kill_groups
  sleep 0.5
  echo "$1 $2 $((t0 - start)) $((a0 * tick_ms)) $(((a1 - a0) * tick_ms)) $((h0 * tick_ms)) $(((h1 - h0) * tick_ms))"
}

# One unmeasured start of each variant: the signing key, the page cache and the Functions host's unpacked copy.
for v in "${variants[@]}"; do for h in "${hosts[@]}"; do measure "$v" "$h" >/dev/null; done; done

results="$work/results.txt"
echo "variant host start_ms app_cpu_ms_to_first app_cpu_ms_${requests}_requests host_cpu_ms_to_first host_cpu_ms_${requests}_requests" >&2
for r in $(seq 1 "$rounds"); do
  order=("${variants[@]}")
  if [ $((r % 2)) -eq 0 ]; then order=(); for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[i]}"); done; fi
  for v in "${order[@]}"; do for h in "${hosts[@]}"; do measure "$v" "$h" | tee -a "$results" >&2; done; done
done

python3 - "$results" "$rounds" "$requests" <<'PY'
import statistics, sys
from collections import defaultdict
path, rounds, requests = sys.argv[1], sys.argv[2], sys.argv[3]
rows = defaultdict(list)
for line in open(path):
    v, h, *nums = line.split()
    rows[(h, v)].append([int(n) for n in nums])
def cell(values):
    return f"{statistics.median(values):.0f} ({min(values)}–{max(values)})"
print(f"\nCold start, median (min–max) of {rounds} starts each, ms; CPU from /proc; first {requests} requests = logins of the load client")
print("| host | variant | start → first exchange | app CPU to first exchange | app CPU, first requests | host CPU to first exchange | host CPU, first requests |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for (h, v), runs in sorted(rows.items()):
    cols = list(zip(*runs))
    host = [cell(cols[3]), cell(cols[4])] if h == "functions" else ["–", "–"]
    print(f"| {h} | {v} | {cell(cols[0])} | {cell(cols[1])} | {cell(cols[2])} | {host[0]} | {host[1]} |")
PY
