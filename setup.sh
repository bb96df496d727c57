#!/usr/bin/env bash
# stasis set-up, for a Debian or Ubuntu machine, as root. Idempotent: run it again at will.
#
#   ./setup.sh          install what stasis needs, build it, put `stasis` on the PATH
#   ./setup.sh demo     ... then capture the bundled example server, restore it, and compare (`stasis demo`)
#   ./setup.sh test     ... then also set up the engine's Python environment and run every test (scripts/test.sh)
#
# What it changes on the machine: Debian/Ubuntu packages (build tools and libraries for CRIU, gcc for the weights
# loader's C loop, util-linux, python3-venv, fincore/vmtouch for tests and benchmarks; for `test` also libnuma1 and
# qemu-user), a CRIU 4.2.1 build under $STASIS_HOME/tools (only if no CRIU >= 4.1 is installed), and the link
# /usr/local/bin/stasis. No kernel or host-wide setting is touched.
set -euo pipefail
cd "$(dirname "$0")"
MODE=${1:-install}
case "$MODE" in install|demo|test) ;; *) echo "usage: $0 [demo|test]" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (CRIU needs root)" >&2; exit 1; }
log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
export DEBIAN_FRONTEND=noninteractive

PKGS="ca-certificates util-linux python3 python3-venv python3-pip gcc libc6-dev vmtouch iproute2 procps"
# The tests also run the real vLLM CPU build (it needs libnuma), and run it once more under qemu-user with a CPU
# model without AVX-512, so that its AVX2 kernels are tested on machines that have AVX-512 (docs/install.md).
if [ "$MODE" = test ]; then PKGS="$PKGS libnuma1 qemu-user"; fi
# Each status is captured whole, then matched: under pipefail a `| grep -q` that stops reading early can fail.
missing=$(for p in $PKGS; do [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == *"ok installed" ]] || echo "$p"; done)
if [ -n "$missing" ]; then
  log "installing packages: $(echo $missing)"
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

node_major() { node -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
  candidate=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/ *Candidate: *\([0-9]*\).*/\1/p')
  if [ "${candidate:-0}" -ge 20 ]; then
    log "installing Node.js from the machine's package sources"
    apt-get install -y -q nodejs npm >/dev/null
  else
    echo "setup.sh: stasis needs Node.js >= 20 and this machine's package sources offer ${candidate:-none}; install Node.js 20 or newer and run again" >&2
    exit 1
  fi
fi

log "building stasis (npm ci, tsc)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
npm run --silent build:dist  # the shipped build: no tests, no test support (tsconfig.build.json)
chmod +x dist/cli/main.js
ln -sfn "$PWD/dist/cli/main.js" /usr/local/bin/stasis

log "CRIU"
scripts/install-criu.sh

if [ "$MODE" = test ]; then
  log "Python environment for the engine (.venv; torch, transformers: a few minutes the first time)"
  scripts/python-env.sh
fi

log "done: $(stasis --version) is at /usr/local/bin/stasis"
case "$MODE" in
  demo) exec stasis demo ;;
  test) exec scripts/test.sh ;;
esac
