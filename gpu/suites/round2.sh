# Diagnosis of a GPU capture, then the reference engine's GPU tests and a tiny-model pipeline run.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
step diag 200 bash gpu/suites/diag.sh
STARTUP_LIMIT=1 bash gpu/suites/reference.sh || true
