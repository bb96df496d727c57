# One GPU capture and restore by hand, everything printed: for finding out why a GPU test failed.
set -euo pipefail
source gpu/suites/_common.sh
export STASIS_HOME=/var/tmp/stasis-diag
rm -rf "$STASIS_HOME"
stasis capture diag --ready-url http://127.0.0.1:8200/health --canary-url http://127.0.0.1:8200/checksum -- python3 examples/gpu_torch_server.py --port 8200 --gib ${GIB:-1} || {
  echo "== capture failed; logs:"
  for f in "$STASIS_HOME"/instances/*/*; do echo "-- $f"; grep -E "Error|Warn|rror" "$f" | grep -v RLIMIT | tail -20 || true; tail -5 "$f"; done
  exit 0
}
stasis restore diag || { for f in "$STASIS_HOME"/instances/*/*; do echo "-- $f"; grep -E "Error|rror" "$f" | tail -20 || true; tail -5 "$f"; done; }
stasis ps
stasis stop --all
