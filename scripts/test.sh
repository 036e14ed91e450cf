#!/usr/bin/env bash
# The test command of Berth (README: `bash scripts/test.sh`), also what CI runs on a clean
# clone of a fresh Debian machine. Steps:
#   1. install the Debian packages the integration tests drive (real etcd, Debian's awscli
#      2.9.x and python3-boto3 1.26.x, which speak the SQS Query protocol, chromium for
#      the console tests) when they are missing; `apt-get update` only if something is;
#   2. `npm install --no-save` (it follows package-lock.json) when node_modules is not current;
#   3. `npm run build`;
#   4. `node scripts/run-tests.js` (BERTH_TEST_FILTER=substring runs a subset).
# Idempotent: a second run skips what is already in place.
# When apt cannot be used (not root, no apt-get) it says so and continues: the tests that
# need a missing tool then fail with a message naming it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd)"
start_seconds=$SECONDS

log() { printf '[test.sh] %s\n' "$*" >&2; }

# --- 1. Debian packages -------------------------------------------------------------------
# package name -> a file that proves it is installed (dpkg -s is the authority; the file
# is a cheap second check that the package was not half-removed).
declare -A debian_package_probe=(
  [etcd-server]=/usr/bin/etcd
  [awscli]=/usr/bin/aws
  [python3-boto3]=/usr/lib/python3/dist-packages/boto3/__init__.py
  [chromium]=/usr/bin/chromium
)

missing_packages=()
for package in "${!debian_package_probe[@]}"; do
  probe="${debian_package_probe[$package]}"
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' && [ -e "$probe" ]; then
    continue
  fi
  missing_packages+=("$package")
done

if [ "${#missing_packages[@]}" -eq 0 ]; then
  log "Debian packages present: ${!debian_package_probe[*]}"
elif [ "${BERTH_SKIP_APT:-}" = "1" ]; then
  log "WARNING: BERTH_SKIP_APT=1: not installing missing Debian packages: ${missing_packages[*]}"
  log "         tests that need them will fail and say which tool is missing."
elif ! command -v apt-get >/dev/null 2>&1; then
  log "WARNING: no apt-get on this machine: cannot install ${missing_packages[*]}"
  log "         tests that need them will fail and say which tool is missing."
elif [ "$(id -u)" -ne 0 ]; then
  log "WARNING: not root: cannot apt-get install ${missing_packages[*]}"
  log "         run as root (or install them yourself); tests that need them will fail."
else
  log "installing missing Debian packages: ${missing_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -q
  # One package at a time, so one unavailable package (e.g. chromium on an odd
  # architecture) does not stop the others.
  for package in "${missing_packages[@]}"; do
    if ! apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$package"; then
      log "WARNING: apt-get install $package failed; tests that need it will fail."
    fi
  done
fi

# Which awscli/boto3 we got matters: Debian bookworm's awscli 2.9.x and boto3 1.26.x use
# the SQS Query protocol, which is what test/awscli.test.ts and test/boto3.test.ts prove.
if [ -x /usr/bin/aws ]; then
  log "awscli: $(/usr/bin/aws --version 2>&1 | head -n 1)"
fi
if [ -x /usr/bin/python3 ]; then
  log "python3-boto3: $(/usr/bin/python3 -c 'import boto3, botocore; print("boto3", boto3.__version__, "botocore", botocore.__version__)' 2>&1 | tail -n 1)"
fi

# --- 2. npm dependencies ------------------------------------------------------------------
# Skip the install when node_modules was installed by this script from the same
# package.json and package-lock.json (a stamp holds their hash).
install_stamp=node_modules/.berth-install-stamp
install_inputs_hash="$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ -d node_modules ] && [ -f "$install_stamp" ] && [ "$(cat "$install_stamp")" = "$install_inputs_hash" ]; then
  log "node_modules is current (package.json and package-lock.json unchanged): skipping npm install"
else
  # `npm install` (not `npm ci`): npm 11 with this machine's settings
  # (omit-lockfile-registry-resolved) writes lockfiles without the other platforms'
  # optional packages (rollup, msgpackr-extract), and `npm ci` then refuses even a freshly
  # generated lockfile. `npm install --no-save` follows the lockfile and changes nothing.
  log "npm install --no-save"
  npm install --no-save --no-audit --no-fund
  echo "$install_inputs_hash" > "$install_stamp"
fi

# --- 3. build -----------------------------------------------------------------------------
log "npm run build"
npm run build

# --- 4. tests -----------------------------------------------------------------------------
log "setup took $((SECONDS - start_seconds)) s; running the tests"
exec node "$repo_root/scripts/run-tests.js"
