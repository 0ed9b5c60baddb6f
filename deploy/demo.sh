#!/usr/bin/env bash
# Runs Fleet end to end on this machine: one controller and three agents on
# 127.0.0.1, all in a temp dir, secured as in production (a CA made with
# `fleetctl pki`, mutual TLS, API tokens, signed releases), deploying the
# hello example:
#
#   v1 rolls out, v2 rolls out, v3 (its /healthz returns 502) fails and is
#   undone, `fleetctl rollback` returns to v1. Then config: c1 (a greeting
#   and an age-encrypted secret) rolls out, c2 (makes /healthz fail) is
#   undone, c3 rolls out, `fleetctl config rollback` returns to c1.
#
#   deploy/demo.sh BUILD_DIR        (FLEET_DEMO_KEEP=1 keeps the temp dir)
#
# It prints the dashboard's URL with a viewer and a deployer token and, on a
# terminal, keeps everything running at the end until Enter is pressed.
#
# Exits non-zero, with one line saying why, as soon as an expectation is not
# met. Only fleetctl's exit codes and what the hello instances serve are
# checked; fleetctl's output is shown as is.
set -euo pipefail

readonly kHosts=3
readonly kWaitTenths=100  # 10 s for the controller, the agents, the versions

if (($# != 1)) || [[ "$1" == -* ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
[[ -d "$1" ]] || { echo "demo: build dir $1 does not exist" >&2; exit 2; }
build_dir="$(cd "$1" && pwd)"
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hello_dir="$repo_dir/deploy/examples/hello"

controller_bin="$build_dir/controller/fleet-controller"
agent_bin="$build_dir/agent/fleet-agent"
fleetctl_bin="$build_dir/cli/fleetctl"
hello_bin="$build_dir/deploy/examples/hello/hello"
for bin in "$controller_bin" "$agent_bin" "$fleetctl_bin" "$hello_bin"; do
  [[ -x "$bin" ]] || { echo "demo: $bin is missing; build first (make)" >&2; exit 2; }
done
for tool in curl python3 setsid age age-keygen; do
  command -v "$tool" >/dev/null ||
    { echo "demo: $tool is required (deploy/install-deps.sh installs curl and age)" >&2; exit 2; }
done

# Everything talks to 127.0.0.1; a proxy from the environment must not be
# used by curl, libcurl probes or gRPC channels.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY="$no_proxy"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/fleet-demo.XXXXXX")"
proc_names=()  # what we started, for cleanup and for failure reports
proc_pids=()

# True while PID exists and is not a zombie.
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

cleanup() {
  local rc=$? i n pid pid_path argv0
  set +e
  trap - EXIT INT TERM
  # Controller and agents before the hello instances, so that no agent starts
  # one while we stop them.
  for ((i = ${#proc_pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${proc_pids[i]}" 2>/dev/null
  done
  for ((i = 0; i < 50; i++)); do
    local any=0
    for pid in "${proc_pids[@]}"; do alive "$pid" && any=1; done
    ((any)) || break
    sleep 0.1
  done
  for ((i = 0; i < ${#proc_pids[@]}; i++)); do
    if alive "${proc_pids[i]}"; then
      echo "demo: ${proc_names[i]} did not stop within 5s, killing it" >&2
      kill -KILL "${proc_pids[i]}" 2>/dev/null
    fi
  done
  wait 2>/dev/null
  for ((n = 1; n <= kHosts; n++)); do
    if [[ -d "$tmp/hosts/demo-$n/apps/hello" ]]; then
      "$hello_dir/stop" "$tmp/hosts/demo-$n/apps/hello" >/dev/null
    fi
  done
  # A hello serving a release from our temp dir whose pid file was lost is
  # ours too.
  for pid_path in /proc/[0-9]*; do
    pid="${pid_path#/proc/}"
    argv0=""
    IFS= read -r -d '' argv0 2>/dev/null <"$pid_path/cmdline" || continue
    [[ "${argv0##*/}" == hello ]] || continue
    if tr '\0' ' ' 2>/dev/null <"$pid_path/cmdline" | grep -qF -- "$tmp/"; then
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  if [[ "${FLEET_DEMO_KEEP:-0}" == 1 ]]; then
    echo "demo: kept $tmp (logs: $tmp/*.log)"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() {
  if [[ -t 1 ]]; then
    printf '\n\033[1m==> %s\033[0m\n' "$*"
  else
    printf '\n==> %s\n' "$*"
  fi
}

# Prints the last lines of every log and which of our processes died, then
# the one-line reason, and exits (the EXIT trap cleans up).
fail() {
  local i log
  for log in "$tmp"/*.log "$tmp"/hosts/*/apps/hello/shared/log/hello.log; do
    [[ -s "$log" ]] || continue
    echo "--- last lines of $log" >&2
    tail -n 15 "$log" >&2
  done
  for ((i = 0; i < ${#proc_pids[@]}; i++)); do
    alive "${proc_pids[i]}" ||
      echo "demo: ${proc_names[i]} (pid ${proc_pids[i]}) is no longer running" >&2
  done
  [[ "${FLEET_DEMO_KEEP:-0}" == 1 ]] ||
    echo "demo: rerun with FLEET_DEMO_KEEP=1 to keep $tmp" >&2
  echo "demo: FAILED: $*" >&2
  exit 1
}

# Shows a fleetctl command, then runs it with its output as is.
fleetctl() {
  echo "\$ fleetctl $*"
  "$fleetctl_bin" "$@"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints N ports nothing listens on, from a random base in 20000..59999.
free_ports() {
  local want="$1" port=$((20000 + RANDOM % 40000)) found=0 tries=0
  while ((found < want)); do
    ((++tries < 1000)) || return 1
    if ! port_in_use "$port"; then
      echo "$port"
      found=$((found + 1))
    fi
    port=$((port + 1))
  done
}

start_process() {
  local name="$1" log="$2"
  shift 2
  "$@" </dev/null >"$log" 2>&1 &
  proc_names+=("$name")
  proc_pids+=("$!")
}

# Whether the `fleetctl hosts` output lists every demo host as connected.
# JSON output follows the API's Host message (id, connected); plain text is
# accepted when all host ids appear, since a fresh controller only knows
# hosts that have connected.
all_hosts_connected() {
  python3 - "$1" "$kHosts" <<'EOF'
import json, sys
text, count = sys.argv[1], int(sys.argv[2])
want = {"demo-%d" % n for n in range(1, count + 1)}
try:
    doc = json.loads(text)
except ValueError:
    sys.exit(0 if all(h in text for h in want) else 1)
seen = set()
def walk(node):
    if isinstance(node, dict):
        if node.get("id") in want and node.get("connected") is True:
            seen.add(node["id"])
        for v in node.values():
            walk(v)
    elif isinstance(node, list):
        for v in node:
            walk(v)
walk(doc)
sys.exit(0 if seen == want else 1)
EOF
}

# Waits up to 10 s until every host serves WANT on PATH (default /version).
expect_version() {
  local want="$1" path="${2:-/version}" n i got
  for ((n = 1; n <= kHosts; n++)); do
    for ((i = 0; ; i++)); do
      got="$(curl -fsS --max-time 2 "http://127.0.0.1:${hello_ports[n - 1]}$path" 2>&1)" || true
      [[ "$got" == "$want" ]] && break
      ((i < kWaitTenths)) ||
        fail "demo-$n (127.0.0.1:${hello_ports[n - 1]}$path) serves '${got}', expected '$want'"
      sleep 0.1
    done
    printf '  demo-%d  127.0.0.1:%-5s  /version -> %s   / -> %s\n' "$n" \
      "${hello_ports[n - 1]}" \
      "$(curl -fsS --max-time 2 "http://127.0.0.1:${hello_ports[n - 1]}/version" 2>&1)" \
      "$(curl -fsS --max-time 2 "http://127.0.0.1:${hello_ports[n - 1]}/" 2>&1)"
  done
}

step "Starting a controller and $kHosts agents in $tmp"
mapfile -t ports < <(free_ports $((2 + kHosts)))
((${#ports[@]} == 2 + kHosts)) || fail "could not pick free ports"
grpc_port="${ports[0]}"
http_port="${ports[1]}"
hello_ports=("${ports[@]:2}")

# The hosts' age identity: secrets in config releases are encrypted to it
# and decrypted only by the agents.
age-keygen -o "$tmp/age.key" 2>/dev/null || fail "age-keygen failed"
age_recipient="$(age-keygen -y "$tmp/age.key")"

# A CA, the controller's server certificate and one client certificate per
# host: agents prove their host id, and everyone checks the controller.
pki="$tmp/pki"
fleetctl pki init "$pki" || fail "fleetctl pki init failed"
fleetctl pki issue --ca-dir "$pki" --controller localhost ||
  fail "fleetctl pki issue --controller failed"
for ((n = 1; n <= kHosts; n++)); do
  "$fleetctl_bin" pki issue --ca-dir "$pki" --host "demo-$n" >/dev/null ||
    fail "fleetctl pki issue --host demo-$n failed"
done
echo "(issued demo-1 ... demo-$kHosts the same way)"
export FLEET_TLS_CA="$pki/ca.crt"

mkdir -p "$tmp/controller"
start_process "fleet-controller" "$tmp/controller.log" \
  "$controller_bin" --listen "127.0.0.1:$grpc_port" \
  --http-listen "127.0.0.1:$http_port" --data-dir "$tmp/controller" \
  --tls-cert "$pki/localhost.crt" --tls-key "$pki/localhost.key" --tls-ca "$pki/ca.crt"
for ((i = 0; ; i++)); do
  port_in_use "$grpc_port" && [[ -s "$tmp/controller/admin.token" ]] && break
  alive "${proc_pids[0]}" || fail "fleet-controller exited at startup"
  ((i < kWaitTenths)) || fail "fleet-controller does not listen on 127.0.0.1:$grpc_port after 10s"
  sleep 0.1
done
echo "controller: 127.0.0.1:$grpc_port (gRPC, mutual TLS), 127.0.0.1:$http_port (HTTPS)"
# With TLS the API needs a token; the controller made the first admin token.
FLEET_TOKEN="$(cat "$tmp/controller/admin.token")"
export FLEET_TOKEN
echo "admin token: $tmp/controller/admin.token (mode $(stat -c %a "$tmp/controller/admin.token"))"

for ((n = 1; n <= kHosts; n++)); do
  host_dir="$tmp/hosts/demo-$n"
  mkdir -p "$host_dir/apps" "$host_dir/state"
  start_process "fleet-agent demo-$n" "$tmp/agent-demo-$n.log" \
    "$agent_bin" --controller "127.0.0.1:$grpc_port" --host-id "demo-$n" \
    --apps-root "$host_dir/apps" --state-dir "$host_dir/state" \
    --label role=web --var "port=${hello_ports[n - 1]}" --age-identity "$tmp/age.key" \
    --tls-cert "$pki/demo-$n.crt" --tls-key "$pki/demo-$n.key" --tls-ca "$pki/ca.crt"
  echo "agent demo-$n: hello will serve on 127.0.0.1:${hello_ports[n - 1]}"
done
export FLEET_CONTROLLER="127.0.0.1:$grpc_port"

step "Waiting for $kHosts agents to connect"
for ((i = 0; ; i++)); do
  hosts_out="$("$fleetctl_bin" --output json hosts 2>&1)" &&
    all_hosts_connected "$hosts_out" && break
  ((i < kWaitTenths)) || fail "not all $kHosts agents connected within 10s; last 'fleetctl hosts': ${hosts_out//$'\n'/ }"
  sleep 0.1
done
fleetctl hosts || fail "fleetctl hosts failed"

step "Registering the hello app; agents accept only releases signed by its key"
fleetctl keygen --out "$tmp/release" || fail "fleetctl keygen failed"
{
  cat "$hello_dir/app.yaml"
  echo "trusted_keys: [\"$(cat "$tmp/release.pub")\"]"
} >"$tmp/app.yaml"
fleetctl app apply -f "$tmp/app.yaml" || fail "fleetctl app apply failed"

step "A deployer token for hello, and a viewer token that may not roll out"
deployer_token="$("$fleetctl_bin" token create --role deployer --app hello \
  --description "demo CI" 2>/dev/null)" || fail "fleetctl token create --role deployer failed"
viewer_token="$("$fleetctl_bin" token create --role viewer --description "demo dashboard" \
  2>/dev/null)" || fail "fleetctl token create --role viewer failed"
fleetctl token list || fail "fleetctl token list failed"
echo "\$ FLEET_TOKEN=<viewer> fleetctl rollout hello v1"
if FLEET_TOKEN="$viewer_token" "$fleetctl_bin" rollout hello v1; then
  fail "a viewer token could start a rollout"
fi
# From here on, releases are pushed and rolled out as the deployer (CI).
FLEET_TOKEN="$deployer_token"

step "The dashboard, on the controller's HTTPS port"
dashboard="https://127.0.0.1:$http_port/ui/"
echo "dashboard:      $dashboard   (certificate: $pki/localhost.crt, CA $pki/ca.crt)"
echo "viewer token:   $viewer_token"
echo "deployer token: $deployer_token   (may roll back hello)"
curl -fsS --cacert "$pki/ca.crt" -o /dev/null "$dashboard" ||
  fail "the dashboard at $dashboard does not answer"
whoami="$(curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $viewer_token" \
  "https://127.0.0.1:$http_port/api/v1/whoami")" || fail "GET /api/v1/whoami failed"
[[ "$whoami" == *'"role":"ROLE_VIEWER"'* ]] ||
  fail "the dashboard API does not see the viewer token as a viewer: $whoami"
echo "GET /api/v1/whoami as the viewer: $whoami"

step "Building releases v1, v2 (another greeting) and v3 (/healthz returns 502)"
"$hello_dir/make-artifact.sh" v1 "$tmp/v1.tar.gz" --bin "$hello_bin" ||
  fail "could not build v1"
"$hello_dir/make-artifact.sh" v2 "$tmp/v2.tar.gz" --bin "$hello_bin" \
  --greeting "hello again" || fail "could not build v2"
"$hello_dir/make-artifact.sh" v3 "$tmp/v3.tar.gz" --bin "$hello_bin" \
  --healthz-status 502 || fail "could not build v3"

step "Pushing the releases, signed; an unsigned push is refused"
for v in v1 v2 v3; do
  fleetctl release push hello "$v" "$tmp/$v.tar.gz" --sign "$tmp/release.key" ||
    fail "fleetctl release push hello $v failed"
done
if fleetctl release push hello v9 "$tmp/v1.tar.gz"; then
  fail "an unsigned release was accepted for an app with trusted_keys"
fi
fleetctl release list hello || fail "fleetctl release list failed"

step "Rolling out v1"
fleetctl rollout hello v1 --wait || fail "rollout of v1 failed"
expect_version v1

step "Rolling out v2"
fleetctl rollout hello v2 --wait || fail "rollout of v2 failed"
expect_version v2

step "Rolling out v3, whose health check fails: this rollout must fail"
if fleetctl rollout hello v3 --wait; then
  fail "rollout of v3 succeeded although its /healthz returns 502"
fi
echo "The v3 rollout failed, as expected."
fleetctl status hello || fail "fleetctl status hello failed"

step "Every host still serves v2"
expect_version v2

step "Rolling back (to v1)"
fleetctl rollback hello --wait || fail "rollback failed"
expect_version v1

step "Config c1: a greeting, and a secret encrypted with age to the hosts' key"
mkdir -p "$tmp/config/c1" "$tmp/config/c2" "$tmp/config/c3"
printf 'greeting=hello from config c1\n' >"$tmp/config/c1/hello.properties"
printf 'DB_PASSWORD=demo-only-password\n' |
  age -r "$age_recipient" -o "$tmp/config/c1/secrets.env.age" || fail "age could not encrypt"
fleetctl config push hello c1 "$tmp/config/c1" || fail "config push of c1 failed"
fleetctl config rollout hello c1 --wait || fail "config rollout of c1 failed"
expect_version "hello from config c1 from v1" /
secret="$tmp/hosts/demo-1/apps/hello/configs/c1/secrets.env"
[[ "$(stat -c %a "$secret")" == 600 ]] || fail "$secret is not mode 0600"
echo "demo-1 decrypted the secret into $secret (mode 0600)"

step "Config c2 makes /healthz fail: this config rollout must fail and go back to c1"
printf 'greeting=broken\nhealthz_status=503\n' >"$tmp/config/c2/hello.properties"
fleetctl config push hello c2 "$tmp/config/c2" || fail "config push of c2 failed"
if fleetctl config rollout hello c2 --wait; then
  fail "config rollout of c2 succeeded although it makes /healthz return 503"
fi
expect_version "hello from config c1 from v1" /

step "Config c3 rolls out; then config rollback returns to c1 (code stays on v1)"
printf 'greeting=hello from config c3\n' >"$tmp/config/c3/hello.properties"
fleetctl config push hello c3 "$tmp/config/c3" || fail "config push of c3 failed"
fleetctl config rollout hello c3 --wait || fail "config rollout of c3 failed"
expect_version "hello from config c3 from v1" /
fleetctl config rollback hello --wait || fail "config rollback failed"
expect_version "hello from config c1 from v1" /
fleetctl status hello || fail "fleetctl status hello failed"

step "History: every rollout and rollback with its (release, config) pair"
fleetctl history hello || fail "fleetctl history hello failed"

step "Demo passed"
if [[ -t 0 && -t 1 ]]; then
  echo "The dashboard stays up at $dashboard (tokens above); press Enter to stop everything."
  read -r _ || true
fi
