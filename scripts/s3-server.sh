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
# Go module proxy (with Go 1.25, fetched the same way where the machine lacks it), one static binary; it builds in
# about 3 minutes on 2 cores the first time (then cached). Its metadata goes to a sidecar folder, so the filesystem needs no user xattrs.
set -euo pipefail

VERSION=v1.8.0
MODULE=github.com/versity/versitygw/cmd/versitygw
TOOLS=${STASIS_TOOLS:-/var/lib/stasis/tools}
BIN="$TOOLS/versitygw-$VERSION/versitygw"

# versitygw's go.mod asks for Go 1.25. A machine without it (Debian 12 ships 1.19) gets that toolchain as the Go
# project publishes it for its own toolchain switching: the module golang.org/toolchain from the Go module proxy,
# fetched by whatever Go is there (Debian's golang-go, installed if none), its hash checked against the pin below.
GO_MIN=1.25
TOOLCHAIN=golang.org/toolchain@v0.0.1-go1.25.0.linux-amd64
TOOLCHAIN_SUM=h1:wVC9wx2XOcP5gHiN8ZzfyTfjlrDLSS7Hu1wjI01n68U=

go_at_least() {  # go_at_least GO_BINARY: its version is >= GO_MIN
  local v
  v=$("$1" env GOVERSION 2>/dev/null || true)
  v=${v#go}
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$GO_MIN" "$v" | sort -V | sed -n 1p)" = "$GO_MIN" ]
}

find_go() {  # prints a Go binary >= GO_MIN, fetching the toolchain module if needed
  local go cache="$TOOLS/go-toolchain"
  for go in "$(command -v go || true)" /usr/local/go/bin/go "$cache/mod/$TOOLCHAIN/bin/go"; do
    if [ -n "$go" ] && [ -x "$go" ] && go_at_least "$go"; then echo "$go"; return; fi
  done
  go=$(command -v go || true)
  [ -n "$go" ] || go=/usr/local/go/bin/go
  if [ ! -x "$go" ] && [ ! -x /usr/lib/go/bin/go ]; then
    echo "s3-server.sh: installing Debian's golang-go to fetch Go $GO_MIN" >&2
    apt-get install -y -q --no-install-recommends golang-go >/dev/null
  fi
  [ -x "$go" ] || go=/usr/lib/go/bin/go
  echo "s3-server.sh: fetching Go $GO_MIN ($TOOLCHAIN) with $("$go" version)" >&2
  local sum
  sum=$(HOME="$cache" GOPATH="$cache/gopath" GOMODCACHE="$cache/mod" GOFLAGS=-mod=mod GOTOOLCHAIN=local \
    "$go" mod download -json "$TOOLCHAIN" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')
  if [ "$sum" != "$TOOLCHAIN_SUM" ]; then
    echo "s3-server.sh: $TOOLCHAIN has hash '$sum', expected $TOOLCHAIN_SUM" >&2
    exit 1
  fi
  go="$cache/mod/$TOOLCHAIN/bin/go"
  chmod -R u+w "$cache/mod/$TOOLCHAIN"  # a module's files come read-only and without exec bits
  chmod u+x "$cache/mod/$TOOLCHAIN"/bin/* "$cache/mod/$TOOLCHAIN"/pkg/tool/*/*
  echo "$go"
}

install() {
  if [ -x "$BIN" ]; then echo "$BIN"; return; fi
  local go
  go=$(find_go)
  mkdir -p "$TOOLS"
  local tmp
  tmp=$(mktemp -d "$TOOLS/.versitygw-build.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  echo "s3-server.sh: building versitygw $VERSION with $("$go" version) (about 3 minutes the first time)" >&2
  GOBIN="$tmp" CGO_ENABLED=0 GOTOOLCHAIN=local "$go" install -trimpath "$MODULE@$VERSION" >&2
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
