#!/usr/bin/env bash
# Smoke test of the image: inside one privileged container, capture the example server, restore it twice side by
# side with --publish (namespaces of their own), check both canaries, stop both, and check nothing is left.
#   deploy/container/smoke.sh [IMAGE]
# PODMAN_ARGS go before `run` (e.g. --runtime runc), RUN_ARGS after it (e.g. --ulimit nofile=20000:20000 where this
# process may not raise its limits to podman's defaults).
set -euo pipefail
IMAGE=${1:-localhost/stasis:dev}
# shellcheck disable=SC2086 # word splitting of the extra arguments is meant
podman ${PODMAN_ARGS:-} run --rm --privileged --network=host ${RUN_ARGS:-} --entrypoint /bin/sh "$IMAGE" -c '
set -eu
stasis --version
stasis doctor >/tmp/doctor.txt 2>&1 || { cat /tmp/doctor.txt; }
port=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])")
stasis capture ex --ready-url http://127.0.0.1:$port/health --canary-url "http://127.0.0.1:$port/answer?q=smoke" \
  -- python3 /opt/stasis/examples/slow_server.py --port $port --startup-seconds 1 >/dev/null
export STASIS_NO_DAEMON=1
a=$(stasis restore ex --publish 127.0.0.1 --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"instance\"][\"url\"])")
b=$(stasis restore ex --publish 127.0.0.1 --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"instance\"][\"url\"])")
for u in "$a" "$b"; do python3 -c "import urllib.request,sys; print(sys.argv[1], urllib.request.urlopen(sys.argv[1] + \"/answer?q=smoke\").read().decode())" "$u"; done
stasis ps
stasis stop --all
test "$(stasis ps --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)[\"instances\"]))")" = 0
echo "smoke: two replicas served and stopped"
'
