#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root of the carried working tree, with .gpu-bundle carried:
#   gpu/run.sh SUITE [args...]
# Unpacks Node, CRIU and the CLI into /opt/stasis, puts `stasis` on the PATH and runs gpu/suites/SUITE.sh.
# Everything a suite measures goes to $OUT (the device tool brings it back) and its table is printed last.
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=${1:?usage: gpu/run.sh SUITE [args...]}
shift
B=.gpu-bundle
T=/opt/stasis
# A machine kept warm between calls keeps /opt/stasis: unpack again when the carried bundle differs from the one there.
digest=$(cat "$B"/*.xz 2>/dev/null | sha256sum | cut -c1-16)
if [ ! -x "$T/bin/node" ] || { [ -f "$B/stasis.tar.xz" ] && [ "$(cat "$T/bundle.sha" 2>/dev/null)" != "$digest" ]; }; then
  rm -rf "$T/app" "$T/criu"
  mkdir -p "$T/bin" "$T/criu" "$T/app"
  xz -dc "$B/node.xz" > "$T/bin/node" && chmod 755 "$T/bin/node"
  tar -C "$T/criu" -xJf "$B/criu.tar.xz"
  tar -C "$T/app" -xJf "$B/stasis.tar.xz"
  cat > "$T/bin/stasis" <<SH
#!/bin/sh
exec $T/bin/node $T/app/dist/cli/main.js "\$@"
SH
  chmod 755 "$T/bin/stasis"
  # The CLI finds the examples and Python package of the carried working tree through these links.
  ln -sfn "$PWD/examples" "$T/app/examples"
  ln -sfn "$PWD/python" "$T/app/python"
  echo "$digest" > "$T/bundle.sha"
fi
export PATH="$T/bin:$PATH" STASIS_CRIU="$T/criu/bin/criu"
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export OUT=${OUT:-/tmp/stasis-out} && mkdir -p "$OUT"
export STASIS_RESULTS_DIR="$OUT"
echo "== $(date -u +%FT%TZ) $(hostname): $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | paste -sd';'), $(nproc) cores, kernel $(uname -r)"
# Which checkpoint entry points this driver exports: cuCheckpointOperationComplete means the custom-storage restore
# (the caller copies the GPU state in itself, from pinned memory) is there to try (docs/benchmarks.md, open questions).
echo "== libcuda checkpoint API: $(python3 -c 'import ctypes; l = ctypes.CDLL("libcuda.so.1"); print(" ".join(n for n in ("cuCheckpointProcessRestore", "cuCheckpointOperationComplete") if hasattr(l, n)))' 2>&1 | tail -1)"
exec bash "gpu/suites/$SUITE.sh" "$@"
