#!/usr/bin/env bash
# Installs CRIU >= 4.1 for stasis into a private prefix, leaving the system's packages alone.
#
#   scripts/install-criu.sh            use a criu >= 4.1 already on the PATH, or build CRIU 4.2.1 with
#                                      stasis's patches into $STASIS_HOME/tools/criu (default
#                                      /var/lib/stasis/tools/criu)
#   scripts/install-criu.sh --pack DIR also copy that build, with the shared libraries it needs, into DIR:
#                                      a relocatable folder (DIR/bin/criu runs anywhere with glibc >= 2.36)
#
# Why a build: Debian bookworm's packaged CRIU 3.17 fails on 6.x kernels ("vdso: Unexpected rt vDSO area
# bounds"). The source is Debian's criu 4.2.1 source package, fetched with apt from the Debian mirror this
# machine's own package sources name (from the sid suite, through a private apt state folder: the machine's
# apt configuration is not changed), and checked against the digest pinned below. stasis's patches
# (scripts/criu-patches/*.patch, each says what it does and why) are applied before the build; a private build
# with other patches or none is rebuilt. A CRIU on the PATH is used as it is: restores then do without what the patches add.
set -euo pipefail

VERSION=4.2.1
DEB_VERSION=4.2.1-1
SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
BUILD_DEPS="build-essential patch libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev libprotobuf-c-dev libprotobuf-dev pkgconf protobuf-c-compiler protobuf-compiler python3-protobuf uuid-dev debian-archive-keyring"

PATCHES_DIR=$(cd "$(dirname "$0")" && pwd)/criu-patches
# CRIU caches what it probes of the kernel (40-50 ms a run) only on a tmpfs, in RUNDIR (default /run); /run is
# not a tmpfs everywhere (our GPU machine's is ext4), /dev/shm is: the cache goes there.
MAKE_FLAGS="RUNDIR=/dev/shm"
PATCH_ID=$({ cat "$PATCHES_DIR"/*.patch; echo "$MAKE_FLAGS"; } | sha256sum | cut -c1-8) # other patches or flags: another build
FEATURES="lazy-prefill" # what the patches add; `criu --version` of the patched build lists them

HOME_DIR=${STASIS_HOME:-/var/lib/stasis}
PREFIX="$HOME_DIR/tools/criu-$VERSION-stasis-$PATCH_ID"
LINK="$HOME_DIR/tools/criu"
PACK=""
FORCE_BUILD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pack) PACK=${2:?--pack needs a folder}; shift 2 ;;
    --build) FORCE_BUILD=1; shift ;;
    *) echo "usage: $0 [--build] [--pack DIR]" >&2; exit 2 ;;
  esac
done

log() { printf 'install-criu: %s\n' "$*" >&2; }

version_ok() { # criu binary -> 0 if >= 4.1 and `criu check` passes
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/^Version: *//p')
  [ -n "$v" ] || return 1
  [ "$(printf '%s\n4.1\n' "$v" | sort -V | sed -n 1p)" = "4.1" ] || return 1
  "$1" check >/dev/null 2>&1
}

patched() { # criu binary -> 0 if it has every feature of stasis's patches
  local f out
  out=$("$1" --version 2>/dev/null) || return 1
  for f in $FEATURES; do grep -q "^Features:.*\b$f\b" <<<"$out" || return 1; done
}

if [ "$FORCE_BUILD" = 0 ] && [ "$(readlink "$LINK" 2>/dev/null)" = "$(basename "$PREFIX")" ] && [ -x "$LINK/bin/criu" ] && version_ok "$LINK/bin/criu" && patched "$LINK/bin/criu"; then
  log "CRIU $("$LINK/bin/criu" --version | sed -n 's/^Version: *//p') already installed at $LINK"
elif [ "$FORCE_BUILD" = 0 ] && [ ! -e "$LINK" ] && command -v criu >/dev/null && version_ok "$(command -v criu)" && [ -z "$PACK" ]; then
  log "using the system's $(command -v criu) ($(criu --version | sed -n 's/^Version: *//p'))"
  exit 0
else
  [ "$(id -u)" = 0 ] || { log "run as root (apt and the install need it)"; exit 1; }
  # The Debian mirror this machine already uses: the first deb/deb-src URI of a non-security Debian suite.
  MIRROR=$(
    {
      cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 ~ /^deb/ {print $2, $3}'
      for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN{RS=""} {u="";s=""; for(i=1;i<=NF;i++){ if($i=="URIs:") u=$(i+1); if($i=="Suites:") s=$(i+1)} if(u!="") print u, s}' "$f"
      done
    } | awk '!found && $2 ~ /^(bookworm|trixie|forky|sid|bullseye|stable|testing|unstable|oldstable)(-updates)?$/ {print $1; found = 1}'
  )
  [ -n "$MIRROR" ] || { log "no Debian mirror found in /etc/apt/sources.list*; install CRIU >= 4.1 yourself and set STASIS_CRIU"; exit 1; }
  log "building CRIU $VERSION from Debian's source package (mirror from this machine's apt sources)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends $BUILD_DEPS >/dev/null
  WORK=$(mktemp -d /tmp/stasis-criu.XXXXXX)
  chmod 755 "$WORK" # apt downloads as its unprivileged _apt user
  trap 'rm -rf "$WORK"' EXIT
  mkdir -p "$WORK/lists/partial"
  cat > "$WORK/sid.sources" <<SRC
Types: deb-src
URIs: $MIRROR
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  APT=(apt-get -q -o "Dir::Etc::SourceList=$WORK/sid.sources" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$WORK/lists")
  "${APT[@]}" update >/dev/null
  (cd "$WORK" && "${APT[@]}" source --download-only --tar-only "criu=$DEB_VERSION" >/dev/null 2>&1) || {
    log "apt could not fetch criu $DEB_VERSION's source from the sid suite of $MIRROR"; exit 1; }
  echo "$SHA256  $WORK/criu_$VERSION.orig.tar.xz" | sha256sum -c --quiet - || { log "digest mismatch for criu_$VERSION.orig.tar.xz: refusing to build it"; exit 1; }
  tar -C "$WORK" -xf "$WORK/criu_$VERSION.orig.tar.xz"
  for p in "$PATCHES_DIR"/*.patch; do
    patch -d "$WORK/criu-$VERSION" -p1 --quiet --forward < "$p" || { log "patch $(basename "$p") does not apply"; exit 1; }
  done
  make -C "$WORK/criu-$VERSION" -j"$(nproc)" criu $MAKE_FLAGS >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log" >&2; log "build failed"; exit 1; }
  rm -rf "$PREFIX.tmp" && mkdir -p "$PREFIX.tmp/bin" "$PREFIX.tmp/libexec" "$PREFIX.tmp/lib"
  install -m 755 "$WORK/criu-$VERSION/criu/criu" "$PREFIX.tmp/libexec/criu"
  rm -rf "$PREFIX" && mv "$PREFIX.tmp" "$PREFIX"
fi

if [ -x "$PREFIX/libexec/criu" ]; then
  # The shared libraries criu needs, except glibc's own and the loader, go beside it; bin/criu points the
  # loader at them. That makes the folder relocatable: copy it to another machine and run bin/criu.
  ldd "$PREFIX/libexec/criu" | awk '/=> \// {print $3}' | grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' | while read -r lib; do
    cp -L "$lib" "$PREFIX/lib/"
  done
  cat > "$PREFIX/bin/criu" <<'WRAP'
#!/bin/sh
# CRIU with its own shared libraries (see scripts/install-criu.sh in stasis).
here=$(cd "$(dirname "$0")/.." && pwd)
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/libexec/criu" "$@"
WRAP
  chmod 755 "$PREFIX/bin/criu"
  ln -sfn "$(basename "$PREFIX")" "$LINK"
  # Earlier builds of stasis's CRIU (other patches or flags) are replaced by this one.
  for old in "$HOME_DIR"/tools/criu-*-stasis*; do [ "$old" = "$PREFIX" ] || rm -rf "$old"; done
  version_ok "$LINK/bin/criu" || { log "the built criu does not pass \`criu check\`"; "$LINK/bin/criu" check >&2 || true; exit 1; }
  patched "$LINK/bin/criu" || { log "the built criu lacks the features of stasis's patches ($FEATURES)"; exit 1; }
  log "CRIU $VERSION with stasis's patches ($FEATURES) ready at $LINK/bin/criu"
fi

if [ -n "$PACK" ]; then
  rm -rf "$PACK" && mkdir -p "$PACK"
  cp -a "$PREFIX/." "$PACK/"
  log "packed a relocatable CRIU into $PACK ($(du -sh "$PACK" | cut -f1))"
fi
