#!/bin/bash
# Capture A/B on one machine: captures the reference engine (CPU, tiny) as "refab" and prints the wall time from the
# end of the canary to the end of the capture, with the phases that move bytes. Run it alternately on two builds
# (bench/results/2026-11-27-devbox/capture-digests/). Needs /tmp/ref-tiny (python -m stasis_engine.reference make-model
# --config tiny --out /tmp/ref-tiny) and port 18182 free.
# usage: bench/capture-ab.sh LABEL
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
export STASIS_HOME=${STASIS_HOME:-/tmp/stasis-capture-ab}
stasis rm refab >/dev/null 2>&1
stasis capture refab --json --engine vllm --ready-url http://127.0.0.1:18182/health --warmup 2 --env PYTHONPATH=$REPO/python -- $REPO/.venv/bin/python -m stasis_engine.reference serve --model-dir /tmp/ref-tiny --port 18182 --device cpu > /tmp/capab.json 2>/dev/null
node -e 'const r=require("/tmp/capab.json"); const c=r.phases.find(p=>p.name==="canary"); const end=Math.max(...r.phases.map(p=>p.endMs)); const d=r.phases.filter(p=>p.name.startsWith("digest")||p.name==="caches"||p.name==="criu-dump"); console.log(process.argv[1].padEnd(5), "after canary", Math.round(end-c.endMs), "ms;", d.map(p=>p.name+" "+Math.round(p.ms)).join(", "))' "$1"
