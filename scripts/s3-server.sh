#!/usr/bin/env bash
# A real S3-compatible server for the tests and benchmarks of `stasis push/pull`: the Versity S3 Gateway
# (versitygw, Apache-2.0) over a plain folder (its posix backend), built from its Go module at a pinned version.
#
#   scripts/s3-server.sh install            build it once into $STASIS_TOOLS (default /var/lib/stasis/tools);
#                                           prints the binary's path
#   scripts/s3-server.sh start DIR [BUCKET] serve DIR/data on a free loopback port with fresh credentials (BUCKET,
#                                           default "stasis", created); prints the environment a client needs
#                                           (AWS_ENDPOINT_URL=..., AWS_ACCESS_KEY_ID=..., ...), also kept in DIR/env
#   scripts/s3-server.sh stop DIR           stop the server started in DIR
#
# Why versitygw: an open-source server (not a mock of the API) that serves objects as files, installable from the
# Go module proxy with the Go already on the machine, one static binary; it builds in about 3 minutes on 2 cores the
# first time (then cached). Its metadata goes to a sidecar folder, so the filesystem needs no user xattrs.
set -euo pipefail

VERSION=v1.8.0
MODULE=github.com/versity/versitygw/cmd/versitygw
TOOLS=${STASIS_TOOLS:-/var/lib/stasis/tools}
BIN="$TOOLS/versitygw-$VERSION/versitygw"

install() {
  if [ -x "$BIN" ]; then echo "$BIN"; return; fi
  local go
  go=$(command -v go || true)
  [ -n "$go" ] || go=/usr/local/go/bin/go
  if [ ! -x "$go" ]; then
    echo "s3-server.sh: Go is needed to build versitygw $VERSION (none on the PATH or in /usr/local/go)" >&2
    exit 1
  fi
  mkdir -p "$TOOLS"
  local tmp
  tmp=$(mktemp -d "$TOOLS/.versitygw-build.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  echo "s3-server.sh: building versitygw $VERSION (about 3 minutes the first time)" >&2
  GOBIN="$tmp" CGO_ENABLED=0 "$go" install -trimpath "$MODULE@$VERSION" >&2
  mkdir -p "$(dirname "$BIN")"
  mv "$tmp/versitygw" "$BIN"
  echo "$BIN"
}

start() {
  local dir=${1:?start needs a folder} bucket=${2:-stasis}
  install >/dev/null
  mkdir -p "$dir/data/$bucket" "$dir/meta"
  dir=$(cd "$dir" && pwd)
  local port key secret
  # A free port, asked of the kernel (port 0), then handed to the server: another process taking it in between
  # makes the start fail below, plainly.
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  key=stasis$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
  secret=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
  ROOT_ACCESS_KEY_ID=$key ROOT_SECRET_ACCESS_KEY=$secret setsid "$BIN" --port "127.0.0.1:$port" --keep-alive --quiet \
    posix --sidecar "$dir/meta" "$dir/data" </dev/null >"$dir/server.log" 2>&1 &
  echo $! >"$dir/server.pid"
  local i
  for i in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
      echo "s3-server.sh: versitygw exited at start; its log:" >&2
      cat "$dir/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  cat >"$dir/env" <<ENV
AWS_ENDPOINT_URL=http://127.0.0.1:$port
AWS_ACCESS_KEY_ID=$key
AWS_SECRET_ACCESS_KEY=$secret
AWS_REGION=us-east-1
STASIS_TEST_BUCKET=$bucket
ENV
  cat "$dir/env"
}

stop() {
  local dir=${1:?stop needs a folder}
  [ -f "$dir/server.pid" ] || return 0
  local pid
  pid=$(cat "$dir/server.pid")
  kill "$pid" 2>/dev/null || true
  local i
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/server.pid"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | start DIR [BUCKET] | stop DIR" >&2; exit 2 ;;
esac
