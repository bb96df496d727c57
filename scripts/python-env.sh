#!/usr/bin/env bash
# Creates .venv with the engine side's pinned dependencies and stasis_engine installed (editable). Idempotent:
# a stamp file records the requirements it was built from.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.stasis-requirements
if [ -f "$stamp" ] && cmp -s "$stamp" python/requirements.txt; then exit 0; fi
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r python/requirements.txt
.venv/bin/pip install -q --disable-pip-version-check --no-deps -e python
cp python/requirements.txt "$stamp"
