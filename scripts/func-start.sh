#!/usr/bin/env bash
# Runs the Azure Functions app locally with Azure Functions Core Tools v4 and Azurite, no Azure account needed.
#
# Why a script: host.json sits at the repository root (fixed layout) and the project in functions/TokenFunctions.
# Core Tools takes the app root from the current folder, builds only when that folder holds exactly one .csproj,
# and reads local.settings.json from the nearest folder up the tree that holds host.json or local.settings.json.
# So this script builds the app into one folder that holds everything the host needs (host.json,
# functions.metadata, worker.config.json, extensions.json, .azurefunctions/, the app and local.settings.json) and
# starts `func start --no-build` there.
#
#   bash scripts/func-start.sh                   # build, start Azurite if nothing listens on 10002, func start
#   bash scripts/func-start.sh --prepare-only    # build the folder only (CI checks it)
#   options: --output DIR (default .func/app), --port N (default 7071)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
output="$root/.func/app"; port=7071; prepare_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --prepare-only) prepare_only=1; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

# local.settings.json: the user's copy at the repository root; made from the sample on first use.
if [ ! -f "$root/local.settings.json" ]; then
  cp "$root/local.settings.sample.json" "$root/local.settings.json"
  echo "created local.settings.json from local.settings.sample.json"
fi

echo "== dotnet publish functions/TokenFunctions -> $output"
dotnet publish "$root/functions/TokenFunctions/TokenFunctions.csproj" -c Release -o "$output" --nologo -v q
cp "$root/local.settings.json" "$output/local.settings.json"
for f in host.json functions.metadata worker.config.json extensions.json TokenFunctions.dll local.settings.json; do
  [ -f "$output/$f" ] || { echo "missing $output/$f" >&2; exit 1; }
done
[ "$prepare_only" -eq 1 ] && exit 0

command -v func >/dev/null || { echo "Azure Functions Core Tools v4 (func) is not on PATH; see README 'Run the Functions app locally'." >&2; exit 1; }
if ! (exec 3<>/dev/tcp/127.0.0.1/10002) 2>/dev/null; then
  [ -x "$root/node_modules/.bin/azurite" ] || (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  mkdir -p "$root/.func/azurite"
  echo "== starting Azurite (blob, queue, table) in .func/azurite"
  "$root/node_modules/.bin/azurite" --silent --location "$root/.func/azurite" --skipApiVersionCheck &
  trap 'kill %1 2>/dev/null || true' EXIT
  sleep 2
fi
cd "$output"
func start --no-build --port "$port"
