#!/usr/bin/env bash
# Packs what the GPU machine needs into .gpu-bundle/ (at most 64 MiB with the working tree; the device tool
# carries it): a Node binary (xz), the built CLI with its production node_modules (koffi's and resvg's Linux x64
# binaries only, two fonts), the relocatable CRIU build, and Python wheels in .whl/. The Python package travels with the working tree (python/).
# Run here (on the development machine) after `./setup.sh`; then `gpu/run.sh SUITE` runs there.
set -euo pipefail
cd "$(dirname "$0")/.."
B=.gpu-bundle
mkdir -p "$B"
if [ ! -f "$B/node.xz" ] || [ "$(cat "$B/node.version" 2>/dev/null)" != "$(node --version)" ]; then
  echo "pack: compressing $(command -v node) ($(node --version))"
  xz -T0 -6 -c "$(command -v node)" > "$B/node.xz.tmp" && mv "$B/node.xz.tmp" "$B/node.xz"
  node --version > "$B/node.version"
fi
echo "pack: CRIU"
scripts/install-criu.sh --pack /tmp/stasis-criu-pack >/dev/null
tar -C /tmp/stasis-criu-pack -cJf "$B/criu.tar.xz" .
echo "pack: stasis"
npm run --silent build
rm -rf /tmp/stasis-app && mkdir -p /tmp/stasis-app
# The built CLI without the unit and integration tests (they run here, not there); the GPU suites run the
# *.gtest.js files, which need src/testing's helpers, so those two travel.
tar -cf - --exclude='*.test.js' --exclude='*.test.js.map' --exclude='*.itest.js' --exclude='*.itest.js.map' dist \
  | tar -C /tmp/stasis-app -xf -
cp -a package.json package-lock.json /tmp/stasis-app/
(cd /tmp/stasis-app && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
find /tmp/stasis-app/node_modules/@koromix -mindepth 1 -maxdepth 1 ! -name 'koffi-linux-x64' -exec rm -rf {} +
# The pictures' renderer and fonts: resvg's Linux x64 binary only (npm picks it; the others are optional and
# skipped), and of DejaVu's 21 fonts (12 MB) the two the pictures use, with the licence.
find /tmp/stasis-app/node_modules/@resvg -mindepth 1 -maxdepth 1 ! -name resvg-js ! -name 'resvg-js-linux-x64-gnu' \
  -exec rm -rf {} +
find /tmp/stasis-app/node_modules/dejavu-fonts-ttf -mindepth 1 -maxdepth 1 ! -name ttf ! -name LICENSE \
  ! -name package.json -exec rm -rf {} +
find /tmp/stasis-app/node_modules/dejavu-fonts-ttf/ttf -type f ! -name DejaVuSans.ttf ! -name DejaVuSans-Bold.ttf -delete
tar -C /tmp/stasis-app -cJf "$B/stasis.tar.xz" .
du -ch "$B"/* | tail -1 | sed 's/^/pack: bundle /'
# The Python packages the GPU machine lacks or has in a version that breaks the capture, as wheels for its
# Python 3.12 (gpu/suites/_common.sh installs them there): pytest, and uvloop 0.22.1, since the machine's uvloop
# 0.23 bundles a libuv that opens an io_uring instance at every loop start, which CRIU cannot dump.
echo "pack: Python wheels for the GPU machine"
mkdir -p .whl
.venv/bin/python -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "uvloop==$(sed -n 's/^uvloop==//p' python/requirements.txt)" "pytest==$(sed -n 's/^pytest==//p' python/requirements.txt)"
compgen -G '.whl/uvloop-0.22.1-cp312*' >/dev/null || { echo "pack: no uvloop 0.22.1 wheel for Python 3.12 in .whl" >&2; exit 1; }
du -ch .whl/* | tail -1 | sed 's/^/pack: wheels /'
