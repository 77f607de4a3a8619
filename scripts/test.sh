#!/usr/bin/env bash
# Runs every test of the project: the .NET suite (unit, HTTP on Kestrel, Table Storage on Azurite that the
# suite starts itself, the SPA sample in headless Chromium, and the real Functions host tier: the published app
# under `func` or ../shared/functions-host/run.sh; the SPA in the browser against both), the SPA sample's static
# server (tests/samples), the interop suite (independent OAuth/JOSE libraries) and the README walkthrough
# (scripts/walkthrough.sh: its curl steps, each effect checked), these two against the standalone host and again
# against the Functions app under one Functions host (scripts/functions-host.sh).
# Installs what it needs from the package registries (npm packages pinned by the lock files).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# `--unit`: the inner loop while changing code (a few minutes): the .NET suite without the real Functions host tier
# (`*OnRealHost`, `RealHostTriggerTests`), the simulations of months and of many instances (`Simulation`, `KeyVaultScaleOutTests`) and the
# browser tests; no walkthrough, interop or sample tests. Table Storage tests still run on the Azurite the suite
# starts (installed once if missing). The full run below is what CI and a change's last check run.
if [ "${1:-}" = "--unit" ]; then
  [ -x node_modules/.bin/azurite ] || npm ci --no-audit --no-fund --loglevel=error
  dotnet tool restore > /dev/null
  dotnet build tests/TokenService.Tests -c Debug --nologo -v q
  exec dotnet test tests/TokenService.Tests -c Debug --no-build --nologo \
    --filter "FullyQualifiedName!~RealHost&FullyQualifiedName!~.Simulation.&FullyQualifiedName!~KeyVaultScaleOutTests"
elif [ $# -gt 0 ]; then
  echo "usage: bash scripts/test.sh [--unit]" >&2
  exit 2
fi

if [ -f package-lock.json ]; then
  echo "== npm ci (Azurite)"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ -f tests/interop/package-lock.json ]; then
  echo "== npm ci (interop clients)"
  npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
fi

# The browser tests (tests/TokenService.BrowserTests) drive Debian's Chromium through Playwright's own driver, which
# comes with its NuGet package; nothing may download a browser. CI runs as root on Debian, so it installs here. Only
# without apt (another distribution) do those tests skip, each saying why.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# apt-get needs root: as another user it runs through sudo when there is one (every apt-get below).
sudo_cmd=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo_cmd="sudo"; fi
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "== apt-get install chromium (browser tests)"
    $sudo_cmd apt-get update -q
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else
    echo "== chromium is not installed and apt-get is unavailable: the browser tests will be skipped" >&2
  fi
fi

# The README walkthrough runs with curl and jq (the CI machine runs as root on Debian; elsewhere through sudo).
command -v jq > /dev/null || ($sudo_cmd apt-get update -q && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq)
command -v curl > /dev/null || ($sudo_cmd apt-get update -q && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl)

# Local dotnet tools (.config/dotnet-tools.json): PowerShell 7 runs the Windows forms of the azd hooks in the
# infrastructure tests; dotnet-counters reads a running host's meter in the counters test (docs/operations.md).
echo "== dotnet tool restore (PowerShell for the azd hook tests, dotnet-counters)"
dotnet tool restore

echo "== dotnet build"
dotnet build TokenFunctions.sln -c Debug --nologo -v q

# The Functions app as Core Tools and a deployment get it (Release, with functions.metadata, extensions.json and
# local.settings.json in one folder): tests/TokenService.Tests/Functions checks this folder.
echo "== Functions app output (scripts/func-start.sh --prepare-only)"
bash scripts/func-start.sh --prepare-only --output artifacts/functions-app
export TOKEN_FUNCTIONS_APP_PREPARED=1

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
passed=0; failed=0; skipped=0; status=0

# Adds the counts of a `node --test` run (its log's last `# pass`, `# fail`, `# skipped` lines) to the totals.
add_node_counts() {
  passed=$((passed + $(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$1" | tail -1)))
  failed=$((failed + $(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$1" | tail -1)))
  skipped=$((skipped + $(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$1" | tail -1)))
}

if [ -f tests/interop/interop.test.mjs ]; then
  echo "== interop: oauth4webapi and jose against the standalone host"
  node --test tests/interop/ 2>&1 | tee "$log_dir/interop.log" || status=1
  add_node_counts "$log_dir/interop.log"
fi

# The real Functions host (the .NET suite's host tier, the second walkthrough and the second interop run): `func`,
# else the host built for tests beside the repository (scripts/functions-host.sh). Without either, one line says
# so; the tier's tests are then reported as skipped, and the walkthrough and interop runs through it are left out.
source scripts/functions-host.sh
functions_host=""
if functions_host_launcher; then functions_host="${functions_host_cmd[*]##*/}"
else echo "== real Functions host tier skipped: $functions_host_skip_reason"; fi

run_walkthrough() { # run_walkthrough LOG ARGS...: runs scripts/walkthrough.sh and adds its line to the totals
  local log="$1"; shift
  bash scripts/walkthrough.sh "$@" 2>&1 | tee "$log" || status=1
  if grep -q '^walkthrough: [0-9]* passed, [0-9]* failed$' "$log"; then
    passed=$((passed + $(sed -n 's/^walkthrough: \([0-9]*\) passed, [0-9]* failed$/\1/p' "$log" | tail -1)))
    failed=$((failed + $(sed -n 's/^walkthrough: [0-9]* passed, \([0-9]*\) failed$/\1/p' "$log" | tail -1)))
  else
    failed=$((failed + 1)); status=1
  fi
}

if [ -d tests/samples ]; then
  echo "== samples: the SPA sample's static server (samples/spa/serve.mjs) on crafted request targets"
  node --test tests/samples/ 2>&1 | tee "$log_dir/samples.log" || status=1
  add_node_counts "$log_dir/samples.log"
fi

echo "== walkthrough: the README's curl steps against the standalone host (scripts/walkthrough.sh)"
run_walkthrough "$log_dir/walkthrough.log" --no-build
if [ -n "$functions_host" ]; then
  # One host (a start costs about 40 s here) serves the walkthrough and the interop suite; each uses its own users.
  echo "== starting the Functions app under $functions_host (scripts/functions-host.sh)"
  trap 'functions_host_stop; rm -rf "$log_dir"' EXIT
  if functions_host_start "$log_dir/functions-host" && functions_host_wait_healthy; then
    echo "== walkthrough: the same steps against the Functions app under $functions_host on $functions_host_url"
    run_walkthrough "$log_dir/walkthrough-functions.log" --base-url "$functions_host_url"
    if [ -f tests/interop/interop.test.mjs ]; then
      echo "== interop: oauth4webapi and jose against the Functions app under $functions_host on $functions_host_url"
      TOKEN_SERVICE_URL="$functions_host_url" node --test tests/interop/ 2>&1 | tee "$log_dir/interop-functions.log" || status=1
      add_node_counts "$log_dir/interop-functions.log"
    fi
  else
    echo "== the Functions host did not start: its walkthrough and interop runs count as one failure"
    failed=$((failed + 1)); status=1
  fi
  functions_host_stop
fi

echo "== dotnet test"
rm -f artifacts/real-functions-host-tier.txt
dotnet test TokenFunctions.sln -c Debug --no-build --nologo 2>&1 | tee "$log_dir/dotnet.log" || status=1
while read -r f p s; do
  failed=$((failed + f)); passed=$((passed + p)); skipped=$((skipped + s))
done < <(sed -n 's/.*Failed: *\([0-9]*\), Passed: *\([0-9]*\), Skipped: *\([0-9]*\).*/\1 \2 \3/p' "$log_dir/dotnet.log")
# The real Functions host tier's cost (hosts started and their start-up), written by its test fixture.
[ ! -f artifacts/real-functions-host-tier.txt ] || echo "== $(cat artifacts/real-functions-host-tier.txt)"

if [ "$passed" -eq 0 ]; then
  echo "no tests ran" >&2
  status=1
fi
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
