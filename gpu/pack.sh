#!/usr/bin/env bash
# Packs what the GPU machine needs into .gpu-bundle/ (at most 64 MiB with the working tree; the device tool
# carries it): a Node binary (xz), the built CLI with its production node_modules (koffi's Linux x64 binary
# only), and the relocatable CRIU build. The Python package travels with the working tree (python/).
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
cp -a dist package.json package-lock.json /tmp/stasis-app/
(cd /tmp/stasis-app && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
find /tmp/stasis-app/node_modules/@koromix -mindepth 1 -maxdepth 1 ! -name 'koffi-linux-x64' -exec rm -rf {} +
tar -C /tmp/stasis-app -cJf "$B/stasis.tar.xz" .
du -ch "$B"/* | tail -1 | sed 's/^/pack: bundle /'
