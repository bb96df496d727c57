#!/usr/bin/env bash
# Builds the container image of deploy/container/Containerfile with podman (or buildah): its context is made here
# from this checkout: this machine's Node binary, stasis's CRIU build packed relocatable (scripts/install-criu.sh
# --pack), the built CLI with its production dependencies, and the example servers.
#   deploy/container/build.sh [IMAGE] [BASE]     (IMAGE default localhost/stasis:dev; BASE: the Containerfile's)
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${1:-localhost/stasis:dev}
BASE=${2:-}
CTX=$(mktemp -d /tmp/stasis-image.XXXXXX)
trap 'rm -rf "$CTX"' EXIT
cp "$(command -v node)" "$CTX/node"
scripts/install-criu.sh --pack "$CTX/criu" >/dev/null
npm run --silent build
mkdir -p "$CTX/app"
cp -a dist package.json package-lock.json "$CTX/app/"
(cd "$CTX/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
cp -a examples "$CTX/examples"
cp deploy/container/Containerfile "$CTX/Containerfile"
# The apt step needs the network of the build host (a sandbox's own may have no DNS). ISOLATION=chroot runs the
# RUN steps without an OCI runtime (where crun cannot set up cgroups, e.g. a host with cgroup v1 and v2 mixed).
podman build --isolation "${ISOLATION:-oci}" --network=host ${BASE:+--build-arg BASE="$BASE"} -t "$IMAGE" -f "$CTX/Containerfile" "$CTX"
