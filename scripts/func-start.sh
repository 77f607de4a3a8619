#!/usr/bin/env bash
# Runs the Azure Functions app locally with Azure Functions Core Tools v4 and Azurite, no Azure account needed.
#
# Why a script: host.json sits at the repository root (fixed layout) and the project in functions/TokenFunctions.
# Core Tools takes the app root from the current folder, builds only when that folder holds exactly one .csproj,
# and reads local.settings.json from the nearest folder up the tree that holds host.json or local.settings.json.
# So this script builds the app into one folder that holds everything the host needs (host.json,
# functions.metadata, worker.config.json, extensions.json, .azurefunctions/, the app and local.settings.json) and
# starts the Functions host there: `func start --no-build` when Core Tools is on PATH, else the Functions host built
# for tests in ../shared/functions-host (run.sh, beside the repository root), which runs the same host the same way.
# The test suite's real-host tier (tests/TokenService.Tests/Infrastructure/RealFunctionsHost.cs) does the same.
#
#   bash scripts/func-start.sh                   # build, start Azurite unless one listens on 10000-10002, start the host
#   bash scripts/func-start.sh --prepare-only    # build the folder only (CI and the tests use it)
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

# The port is checked first (before the publish, a minute or two, and before anything is written). A port in
# use is most often a token service already running (the standalone host listens on 7071 too): use it, or pick another.
if [ "$prepare_only" -eq 0 ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "127.0.0.1:$port is already in use: another process listens there (if it is the token service, use it), or choose another port with --port N and set TokenService__Issuer to http://127.0.0.1:N in local.settings.json." >&2
  exit 1
fi

# local.settings.json: the user's copy at the repository root; made from the sample on first use.
if [ ! -f "$root/local.settings.json" ]; then
  cp "$root/local.settings.sample.json" "$root/local.settings.json"
  echo "created local.settings.json from local.settings.sample.json"
fi

# The host is checked before the publish (a minute or two), so a missing one is reported at once.
launcher=""
if [ "$prepare_only" -eq 0 ]; then
  if command -v func >/dev/null; then
    launcher=func
  elif [ -f "$root/../shared/functions-host/run.sh" ]; then
    launcher="$(cd "$root/../shared/functions-host" && pwd)/run.sh"
  else
    cat >&2 <<'MSG'
Azure Functions Core Tools v4 (func) is not on PATH. Install it, then run this script again:
  npm install -g azure-functions-core-tools@4 --unsafe-perm true
  (or the package for your OS: https://learn.microsoft.com/azure/azure-functions/functions-run-local#install-the-azure-functions-core-tools)
MSG
    exit 1
  fi
fi

echo "== dotnet publish functions/TokenFunctions -> $output"
dotnet publish "$root/functions/TokenFunctions/TokenFunctions.csproj" -c Release -o "$output" --nologo -v q
cp "$root/local.settings.json" "$output/local.settings.json"
for f in host.json functions.metadata worker.config.json extensions.json TokenFunctions.dll local.settings.json; do
  [ -f "$output/$f" ] || { echo "missing $output/$f" >&2; exit 1; }
done
[ "$prepare_only" -eq 1 ] && exit 0

# Azurite: the host keeps timer schedules and its secrets in blobs and queues, the app its state in tables, so all
# three services must be there. One already listening on all three ports is used; none, and one is started here.
listening=()
for p in 10000 10001 10002; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then listening+=("$p"); fi
done
if [ "${#listening[@]}" -eq 0 ]; then
  [ -x "$root/node_modules/.bin/azurite" ] || (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  mkdir -p "$root/.func/azurite"
  echo "== starting Azurite (blob 10000, queue 10001, table 10002) in .func/azurite"
  "$root/node_modules/.bin/azurite" --silent --location "$root/.func/azurite" --skipApiVersionCheck &
  trap 'kill %1 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/10002) 2>/dev/null && break; sleep 0.2; done
elif [ "${#listening[@]}" -ne 3 ]; then
  echo "only ports ${listening[*]} of 10000 (blob), 10001 (queue) and 10002 (table) answer: start Azurite with all three services (npx azurite), or stop what holds those ports." >&2
  exit 1
fi
cd "$output"
if [ "$launcher" = func ]; then
  func start --no-build --port "$port"
else
  echo "== func is not on PATH: starting the Functions host of $launcher"
  "$launcher" "$output" "$port"
fi
