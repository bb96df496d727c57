# The harness itself: the bundle unpacks, stasis runs, CRIU passes its check, the GPU is seen.
set -euo pipefail
source gpu/suites/_common.sh
stasis --version
stasis doctor || true
python3 -c "import uvloop, pytest; print('uvloop', uvloop.__version__, 'pytest', pytest.__version__)"
