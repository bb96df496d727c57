#!/usr/bin/env bash
# Creates .venv with the engine side's pinned dependencies and stasis_engine installed (editable). Idempotent:
# a stamp file records the requirements it was built from.
set -euo pipefail
cd "$(dirname "$0")/.."
# The C lanes loop of the weights loader (stasis_engine/weights/_lanes.c: no Python lock between its threads);
# without it the loader runs the same loop in Python, slower.
lanes=python/stasis_engine/weights/_lanes
if [ ! -f $lanes.so ] || [ $lanes.c -nt $lanes.so ]; then
  cc -O2 -Wall -Wextra -Werror -shared -fPIC -pthread -o $lanes.so.tmp $lanes.c && mv $lanes.so.tmp $lanes.so
fi
stamp=.venv/.stasis-requirements
if [ -f "$stamp" ] && cmp -s "$stamp" python/requirements.txt; then exit 0; fi
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r python/requirements.txt
.venv/bin/pip install -q --disable-pip-version-check --no-deps -e python
cp python/requirements.txt "$stamp"
