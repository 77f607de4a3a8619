#!/usr/bin/env bash
# The Functions app under a real Functions host, for the scripts that test through it (sourced by
# scripts/walkthrough.sh --functions-host and scripts/test.sh, so that one host started by test.sh serves both the
# README walkthrough and the interop suite).
#
# It runs the run folder artifacts/functions-app (built by scripts/func-start.sh --prepare-only) the way
# scripts/func-start.sh does: a copy of the folder with local.settings.sample.json's Values as local.settings.json
# (the issuer set to the host's own URL, AzureWebJobsStorage and the app's tables on its own Azurite, the
# development signing key under the work folder), under `func start --no-build` when Core Tools is on PATH, else
# ../shared/functions-host/run.sh beside the repository. Azurite runs with blob, queue and table on free ports and
# in memory, so nothing is shared with another run.
#
#   source scripts/functions-host.sh
#   functions_host_launcher || echo "$functions_host_skip_reason"      # which host, or why there is none
#   functions_host_start WORK_DIR                                       # sets functions_host_url; returns at once
#   functions_host_wait_healthy                                         # until /healthz answers 200 (or the host exits)
#   functions_host_stop                                                 # host (with its worker) and Azurite
#
# WORK_DIR receives app/ (the run folder), host.log and azurite.log. Needs node (a free port), curl and jq.

functions_host_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
functions_host_cmd=()
functions_host_skip_reason=""
functions_host_url=""
functions_host_pid=""
functions_host_azurite_pid=""
functions_host_log=""

# Sets functions_host_cmd to `func start --no-build` or run.sh; without either, sets functions_host_skip_reason
# (the one line scripts/test.sh prints) and returns 1.
functions_host_launcher() {
  if command -v func > /dev/null; then
    functions_host_cmd=(func)
  elif [ -f "$functions_host_root/../shared/functions-host/run.sh" ]; then
    functions_host_cmd=(bash "$(cd "$functions_host_root/../shared/functions-host" && pwd)/run.sh")
  else
    functions_host_skip_reason="neither func (Core Tools v4) on PATH nor ../shared/functions-host/run.sh"
    return 1
  fi
}

functions_host_free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

functions_host_start() { # functions_host_start WORK_DIR
  local work port blob queue table key storage launcher=() run=()
  work="$(mkdir -p "$1" && cd "$1" && pwd)"
  [ "${#functions_host_cmd[@]}" -gt 0 ] || functions_host_launcher || { echo "functions host: $functions_host_skip_reason" >&2; return 1; }
  if [ ! -f "$functions_host_root/artifacts/functions-app/functions.metadata" ]; then
    echo "functions host: artifacts/functions-app is not built (bash scripts/func-start.sh --prepare-only --output artifacts/functions-app)" >&2
    return 1
  fi
  # Each process in its own process group (setsid), so that stopping it stops what it started (the worker, node).
  if command -v setsid > /dev/null; then launcher=(setsid); fi
  rm -rf "$work/app"
  cp -r "$functions_host_root/artifacts/functions-app" "$work/app"
  port="$(functions_host_free_port)"; blob="$(functions_host_free_port)"; queue="$(functions_host_free_port)"; table="$(functions_host_free_port)"
  functions_host_url="http://127.0.0.1:$port"
  functions_host_log="$work/host.log"
  "${launcher[@]}" "$functions_host_root/node_modules/.bin/azurite" --blobHost 127.0.0.1 --blobPort "$blob" \
    --queueHost 127.0.0.1 --queuePort "$queue" --tableHost 127.0.0.1 --tablePort "$table" \
    --inMemoryPersistence --skipApiVersionCheck --disableProductStyleUrl --silent \
    > "$work/azurite.log" 2>&1 < /dev/null &
  functions_host_azurite_pid=$!
  disown "$functions_host_azurite_pid" 2> /dev/null || true # its stop is a kill: no "Killed" job line in the caller's output
  key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
  storage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue/devstoreaccount1;TableEndpoint=http://127.0.0.1:$table/devstoreaccount1;"
  # The README's settings (local.settings.sample.json), with this host's address and storage.
  jq --arg url "$functions_host_url" --arg storage "$storage" --arg keys "$work/keys/signing-keys.json" \
    '.Values.TokenService__Issuer = $url | .Values.AzureWebJobsStorage = $storage | .Values.Storage__TableConnectionString = $storage | .Values.Keys__DevelopmentKeyPath = $keys' \
    "$functions_host_root/local.settings.sample.json" > "$work/app/local.settings.json" || return 1
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$table") 2> /dev/null && break; sleep 0.5; done
  if [ "${functions_host_cmd[0]}" = func ]; then run=(func start --no-build --port "$port")
  else run=("${functions_host_cmd[@]}" "$work/app" "$port"); fi  # run.sh RUN_FOLDER PORT
  (cd "$work/app" && exec "${launcher[@]}" "${run[@]}") > "$functions_host_log" 2>&1 < /dev/null &
  functions_host_pid=$!
}

# Waits (up to 5 minutes: the host and worker take 30-90 s on a loaded 2-core machine) for /healthz to answer 200
# with the issuer at the host's URL; returns 1, printing the host log's tail, when the host exits or never answers.
functions_host_wait_healthy() {
  for _ in $(seq 1 600); do
    if [ -n "$functions_host_pid" ] && ! kill -0 "$functions_host_pid" 2> /dev/null; then break; fi
    if curl -sf -o /dev/null "$functions_host_url/healthz"; then return 0; fi
    sleep 0.5
  done
  echo "functions host: not healthy on $functions_host_url; the last lines of its log ($functions_host_log):" >&2
  [ ! -f "$functions_host_log" ] || tail -40 "$functions_host_log" | sed 's/^/    /' >&2
  return 1
}

# Safe under `set -e` (scripts/test.sh): the processes may have exited already.
functions_host_stop() {
  if [ -n "$functions_host_pid" ] && kill -0 "$functions_host_pid" 2> /dev/null; then
    kill -TERM -- "-$functions_host_pid" 2> /dev/null || kill -TERM "$functions_host_pid" 2> /dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$functions_host_pid" 2> /dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$functions_host_pid" 2> /dev/null || kill -KILL "$functions_host_pid" 2> /dev/null || true
  fi
  functions_host_pid=""
  if [ -n "$functions_host_azurite_pid" ]; then
    kill -KILL -- "-$functions_host_azurite_pid" 2> /dev/null || kill -KILL "$functions_host_azurite_pid" 2> /dev/null || true
  fi
  functions_host_azurite_pid=""
  return 0
}
