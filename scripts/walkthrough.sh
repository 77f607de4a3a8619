#!/usr/bin/env bash
# Runs the README walkthrough ("## Walkthrough: issue → refresh → revoke with curl") against a freshly started
# standalone host and checks the effect of every step.
#
# The commands live in one place, README.md: this script reads the walkthrough's bash block from there, splits it
# into steps (a step starts at a line "# N. "), runs each step in this shell (so the variables carry over, as in
# a reader's terminal) with BASE pointed at the host it started, and checks the step's output and variables with
# check_step_N below. A step without a check, or a check without a step, fails.
#
# The host: `dotnet run --project functions/TokenService.Server -- --urls http://127.0.0.1:<free port>`, so the
# launch profile gives it the Development environment as it gives a reader; TokenService__Issuer matches the URL
# and Keys__DevelopmentKeyPath is a temporary folder.
#
# Usage: bash scripts/walkthrough.sh [--no-build]    (--no-build: the solution is built already, as in test.sh)
#        bash scripts/walkthrough.sh --functions-host (the Functions app instead, started by scripts/functions-host.sh:
#             artifacts/functions-app, built by scripts/func-start.sh --prepare-only, copied with the sample's
#             local.settings.json (issuer = its URL) under `func start`, or ../shared/functions-host/run.sh without
#             func, with its own Azurite on free ports; scripts/test.sh starts that host itself and uses --base-url)
#        bash scripts/walkthrough.sh --base-url URL   (a host already running at URL, in Development; starts nothing)
#        bash scripts/walkthrough.sh --print          (prints the steps as read from README.md, runs nothing)
# Needs dotnet, node (to find a free port), curl and jq. Ends with one line `walkthrough: N passed, N failed`,
# which scripts/test.sh adds to its totals; exits 1 when a check failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readme="$root/README.md"

# The first ```bash block after the walkthrough's heading, verbatim.
walkthrough_block() {
  awk '
    /^## Walkthrough:/ { section = 1; next }
    section && /^## / { exit }
    section && !inblock && /^```bash[[:space:]]*$/ { inblock = 1; next }
    inblock && /^```[[:space:]]*$/ { exit }
    inblock { print }
  ' "$readme"
}

# steps[0] is the preamble (BASE=...), steps[N] is step N.
steps=()
split_steps() {
  local block line current="" expected=1
  block="$(walkthrough_block)"
  if [ -z "$block" ]; then
    echo "walkthrough: no bash block under '## Walkthrough:' in README.md" >&2
    return 1
  fi
  while IFS= read -r line; do
    if [[ $line =~ ^#\ ([0-9]+)\.\  ]]; then
      if [ "${BASH_REMATCH[1]}" != "$expected" ]; then
        echo "walkthrough: README step '${line}' where step ${expected} was expected" >&2
        return 1
      fi
      steps+=("$current")
      current="$line"$'\n'
      expected=$((expected + 1))
    else
      current+="$line"$'\n'
    fi
  done <<< "$block"
  steps+=("$current")
}

if [ "${1:-}" = "--print" ]; then
  split_steps || exit 1
  printf '%s' "${steps[@]}"
  exit 0
fi
build_flag=(); mode=standalone; base_url=""
case "${1:-}" in
  --no-build) build_flag=(--no-build) ;;
  --functions-host) mode=functions ;;
  --base-url) mode=running; base_url="${2:?--base-url needs a URL}" ;;
esac

for tool in dotnet node curl jq; do
  if ! command -v "$tool" > /dev/null; then
    echo "walkthrough: $tool is required" >&2
    echo "walkthrough: 0 passed, 1 failed"
    exit 1
  fi
done

passed=0; failed=0
pass() { passed=$((passed + 1)); echo "  ok   $1"; }
flunk() { failed=$((failed + 1)); echo "  FAIL $1"; }

# ---- checks: helpers -------------------------------------------------------------------------------------------

# Non-empty output lines of a step.
out_lines() { grep -v '^[[:space:]]*$' "$1"; }
# Line N of a step's output.
out_line() { out_lines "$1" | sed -n "${2}p"; }
# True when $2 (a jq expression) holds for the JSON document $1.
holds() { jq -e "$2" > /dev/null 2>&1 <<< "$1"; }
# The claims of a JWT, as JSON.
claims() {
  jq -R 'split(".")[1] | gsub("-"; "+") | gsub("_"; "/") | . + ("=" * ((4 - length % 4) % 4)) | @base64d | fromjson' <<< "$1" 2> /dev/null
}
reason=""
need() { # need <description> <condition...>: records the first unmet condition of a check
  local what="$1"; shift
  if ! "$@"; then
    [ -n "$reason" ] || reason="$what"
  fi
}
# Each output line is one JSON document or one HTTP status code, and the output ends with a newline: outputs do
# not run together, within a step or into the next one.
separate_outputs() {
  local l
  [ ! -s "$1" ] || [ -z "$(tail -c 1 "$1")" ] || return 1
  while IFS= read -r l; do
    [[ $l =~ ^[0-9]{3}$ ]] && continue
    jq -e -s 'length == 1' > /dev/null 2>&1 <<< "$l" || return 1
  done < <(out_lines "$1")
}
line_count_is() { [ "$(out_lines "$1" | wc -l)" -eq "$2" ]; }
token_set() { [ -n "$1" ] && [ "$1" != null ]; }

# ---- checks: one per README step --------------------------------------------------------------------------------

check_step_1() {
  need "ID_TOKEN is a JWT" token_set "$ID_TOKEN"
  local c; c="$(claims "$ID_TOKEN")"
  need "the ID token is issued by $BASE/dev-idp for alice" holds "$c" ".iss == \"$BASE/dev-idp\" and .sub == \"alice\""
  need "the ID token lives 300 s, as the README says" holds "$c" '.exp - .iat == 300'
}

check_step_2() {
  need "one JSON line" line_count_is "$1" 1
  need "a Bearer access token, a refresh token, scope api.read" holds "$(out_line "$1" 1)" \
    '.token_type == "Bearer" and (.access_token | length > 0) and (.refresh_token | length > 0) and .scope == "api.read"'
  need "RT and AT are set" eval 'token_set "$RT" && token_set "$AT"'
  need "AT is issued by $BASE" holds "$(claims "$AT")" ".iss == \"$BASE\" and .sub == \"alice\" and (.sid | length > 0)"
}

check_step_3() {
  need "one JSON line" line_count_is "$1" 1
  need "the access token is active, for alice" holds "$(out_line "$1" 1)" '.active == true and .sub == "alice"'
}

check_step_4() {
  need "one JSON line" line_count_is "$1" 1
  need "a new access token and refresh token" holds "$(out_line "$1" 1)" '(.access_token | length > 0) and (.refresh_token | length > 0)'
  need "RT2 is set and differs from RT (rotation)" eval 'token_set "$RT2" && [ "$RT2" != "$RT" ]'
}

check_step_5() {
  need "two JSON lines" line_count_is "$1" 2
  need "reusing RT is invalid_grant" holds "$(out_line "$1" 1)" '.error == "invalid_grant"'
  need "RT2 is invalid_grant too: the session is revoked" holds "$(out_line "$1" 2)" '.error == "invalid_grant"'
}

check_step_6() {
  need "four output lines" line_count_is "$1" 4
  need "RT3 and AT3 are set" eval 'token_set "$RT3" && token_set "$AT3"'
  need "a fresh session (AT3's sid is not AT's)" eval '[ "$(claims "$AT3" | jq -r .sid)" != "$(claims "$AT" | jq -r .sid)" ]'
  need "AT3 is active before the revocation" holds "$(out_line "$1" 1)" '.active == true'
  local status; status="$(out_line "$1" 2)"
  need "the revocation answers 200" test "$status" = 200
  need "RT3 is refused after the revocation" holds "$(out_line "$1" 3)" '.error == "invalid_grant"'
  need "AT3 is inactive after the revocation" holds "$(out_line "$1" 4)" '.active == false'
}

check_step_7() {
  need "one JSON line" line_count_is "$1" 1
  local out; out="$(out_line "$1" 1)"
  need "the current session is listed" holds "$out" '.sessions | any(.current == true)'
  local ended
  for ended in "$(claims "$AT" | jq -r .sid)" "$(claims "$AT3" | jq -r .sid)"; do
    need "ended sessions are not listed" holds "$out" ".sessions | all(.sid != \"$ended\")"
  done
  need "MINE has this service as its audience" holds "$(claims "$MINE")" \
    "(.aud | if type == \"array\" then . else [.] end) | index(\"$BASE\") != null"
}

# ---- the host ---------------------------------------------------------------------------------------------------

work="$(mktemp -d)"
host_pid=""
# The Functions host (--functions-host): started and stopped by scripts/functions-host.sh, which test.sh shares.
source "$root/scripts/functions-host.sh"
stop_host() {
  functions_host_stop
  if [ -n "$host_pid" ] && kill -0 "$host_pid" 2> /dev/null; then
    # The host runs in its own process group (setsid): dotnet run and the app it started.
    kill -TERM -- "-$host_pid" 2> /dev/null || kill -TERM "$host_pid" 2> /dev/null
    for _ in $(seq 1 50); do
      kill -0 "$host_pid" 2> /dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$host_pid" 2> /dev/null || kill -KILL "$host_pid" 2> /dev/null
  fi
  host_pid=""
}
trap 'stop_host; rm -rf "$work"' EXIT

split_steps || { echo "walkthrough: 0 passed, 1 failed"; exit 1; }

free_port() { node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
port="$(free_port)"
url="http://127.0.0.1:$port"
cd "$root"
if command -v setsid > /dev/null; then launcher=(setsid); else launcher=(); fi
case "$mode" in
  standalone)
    echo "== walkthrough: starting the standalone host on $url (dotnet run)"
    TokenService__Issuer="$url" Keys__DevelopmentKeyPath="$work/keys/signing-keys.json" \
      "${launcher[@]}" dotnet run --project functions/TokenService.Server "${build_flag[@]}" -- --urls "$url" \
      > "$work/host.log" 2>&1 < /dev/null &
    host_pid=$!
    described="Development from the launch profile" ;;
  functions)
    if ! functions_host_launcher; then
      echo "walkthrough: $functions_host_skip_reason: the Functions host walkthrough is skipped"
      exit 0
    fi
    if ! functions_host_start "$work/functions"; then
      echo "walkthrough: 0 passed, 1 failed"; exit 1
    fi
    url="$functions_host_url"
    host_pid="$functions_host_pid"
    echo "== walkthrough: starting the Functions app under ${functions_host_cmd[*]##*/} on $url"
    described="the Functions app under a Functions host" ;;
  running)
    url="${base_url%/}"
    echo "== walkthrough: against the host running on $url"
    described="already running" ;;
esac

started=0
for _ in $(seq 1 600); do
  if [ "$mode" != running ] && ! kill -0 "$host_pid" 2> /dev/null; then break; fi
  if curl -sf -o /dev/null "$url/healthz"; then started=1; break; fi
  sleep 0.5
done
if [ "$started" -eq 1 ] && holds "$(curl -s "$url/.well-known/openid-configuration")" ".issuer == \"$url\""; then
  pass "host: healthy on $url ($described), issuer $url"
else
  flunk "host: did not become healthy on $url with issuer $url; its log:"
  log="$work/host.log"; [ "$mode" != functions ] || log="$functions_host_log"
  [ ! -f "$log" ] || sed 's/^/    /' "$log" | tail -40
  echo "walkthrough: $passed passed, $failed failed"
  exit 1
fi

# ---- the steps --------------------------------------------------------------------------------------------------

# The preamble sets BASE to the README's address; the steps run against the host started here.
eval "${steps[0]}"
BASE="$url"
last=$(( ${#steps[@]} - 1 ))
for i in $(seq 1 "$last"); do
  title="$(head -1 <<< "${steps[$i]}" | sed 's/^# //')"
  out="$work/step$i.out"
  eval "${steps[$i]}" > "$out" 2> "$work/step$i.err"
  echo "-- $title"
  sed 's/^/   | /' "$out"
  [ ! -s "$out" ] || [ -z "$(tail -c 1 "$out")" ] || echo
  reason=""
  if ! declare -F "check_step_$i" > /dev/null; then
    flunk "step $i: scripts/walkthrough.sh has no check_step_$i for it"
    continue
  fi
  need "each output on its own line (one JSON document or status code per line)" separate_outputs "$out"
  "check_step_$i" "$out"
  if [ -z "$reason" ]; then
    pass "step $i"
  else
    flunk "step $i: $reason"
    sed 's/^/   stderr| /' "$work/step$i.err"
  fi
done
for check in $(declare -F | awk '{ print $3 }' | grep '^check_step_[0-9]*$'); do
  if [ "${check#check_step_}" -gt "$last" ]; then
    flunk "$check: README.md has no step ${check#check_step_}"
  fi
done

stop_host
echo "walkthrough: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
