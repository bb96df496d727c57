# The reference engine on the GPU and the whole pipeline on it with a tiny model (a smoke test).
set -euo pipefail
source gpu/suites/_common.sh
[ -f "$OUT/steps.txt" ] || : > "$OUT/steps.txt"
export STASIS_HOME=/var/tmp/stasis-home
[ -n "${SKIP_REF_TESTS:-}" ] || step reference-tests 240 bash -c "cd python && python3 -m pytest -q -x tests/gpu/test_reference_gpu.py"
step make-tiny 60 python3 -m stasis_engine.reference make-model --config tiny --out /var/tmp/ref-tiny --device cuda
step capture-tiny 240 stasis capture ref-tiny --engine vllm --ready-url http://127.0.0.1:8100/health --ready-timeout 200 --warmup 2 -- python3 -m stasis_engine.reference serve --model-dir /var/tmp/ref-tiny --port 8100 --device cuda
step restore-tiny 120 stasis restore ref-tiny
step restore-tiny-again 120 bash -c "stasis stop --all && stasis restore ref-tiny && stasis stop --all"
[ "${STARTUP_LIMIT:-330}" -gt 1 ] && step startup-bench "${STARTUP_LIMIT:-330}" bash -c "cd python && python3 ../bench/reference_startup.py --out $OUT/reference"
echo; echo "== results"
[ -f "$OUT/reference/results.md" ] && cat "$OUT/reference/results.md" || true
grep -h -E "✓|✗|restored|captured|error|hint" "$OUT"/capture-tiny.log "$OUT"/restore-tiny*.log | cut -c1-200 || true
echo; cat "$OUT/steps.txt"
