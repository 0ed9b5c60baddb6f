#!/usr/bin/env bash
# Installs the Debian packages Fleet builds and tests against (see DESIGN.md,
# "Dependencies"). Idempotent and quick when everything is present: it only
# calls apt-get (and only needs root) when a package is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libarchive-dev libyaml-cpp-dev libcli11-dev
  libcurl4-openssl-dev libcpp-httplib-dev prometheus-cpp-dev libsodium-dev
  libssl-dev libsqlite3-dev libpq-dev libgtest-dev libgmock-dev
  nlohmann-json3-dev libtomlplusplus-dev age
  prometheus prometheus-alertmanager
  postgresql-15 util-linux
  clang libclang-rt-dev
  chromium chromium-driver libnss3-tools fonts-dejavu-core
  curl ca-certificates
)

# One dpkg-query for all packages keeps this quick. It exits non-zero when
# some package is unknown, which just means missing. A removed package can
# still be known ("deinstall ok config-files"), so only the exact installed
# status counts.
declare -A installed=()
while read -r pkg status; do
  if [[ "$status" == "install ok installed" ]]; then installed["$pkg"]=1; fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for pkg in "${packages[@]}"; do
  [[ -n "${installed[$pkg]:-}" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: not root and sudo is not available; run as root: $0" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi

"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
