#!/usr/bin/env bash
# CRIU's restore log level side by side: restores of one snapshot, alternated round by round between copies of the
# built CLI that differ only in the level they pass CRIU (4, stasis's default, against 3 and 2). A restore at -v4
# of the real vLLM writes ~40k lines, one write each; this says what they cost.
#   bench/criu-log-level.sh SNAPSHOT [ROUNDS] [LEVELS]     (STASIS_HOME: where the snapshot is; default 5, "4 3 2")
# Prints a table (level, median ready, median criu-restore, log lines) and writes $OUT/criu-log-level.json.
set -euo pipefail
cd "$(dirname "$0")/.."
SNAP=${1:?usage: bench/criu-log-level.sh SNAPSHOT [ROUNDS] [LEVELS]}
: "${STASIS_HOME:?set STASIS_HOME to the store that holds the snapshot}"
ROUNDS=${2:-5}
LEVELS=${3:-4 3 2}
OUT=${OUT:-$(mktemp -d)}
[ -f dist/criu/restore.js ] || { echo "build first (npm run build)"; exit 2; }
grep -q "^const LOG_LEVEL = 4;" dist/criu/restore.js || { echo "dist/criu/restore.js: no 'const LOG_LEVEL = 4;'"; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for l in $LEVELS; do
  mkdir -p "$work/v$l"
  cp -a dist package.json "$work/v$l/"
  ln -s "$PWD/node_modules" "$work/v$l/node_modules"
  ln -s "$PWD/python" "$work/v$l/python"
  ln -s "$PWD/examples" "$work/v$l/examples"
  sed -i "s/^const LOG_LEVEL = 4;/const LOG_LEVEL = $l;/" "$work/v$l/dist/criu/restore.js"
done
: > "$OUT/runs.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  for l in $LEVELS; do
    r=$(STASIS_NO_DAEMON=1 node "$work/v$l/dist/cli/main.js" restore "$SNAP" --json 2>/dev/null) || { echo "restore at -v$l failed: ${r:0:2000}"; exit 1; }
    node -e '
      const r = JSON.parse(process.argv[1]); const fs = require("fs");
      const ph = (n) => (r.phases.find((p) => p.name === n) || {}).durationMs;
      const log = process.env.STASIS_HOME + "/instances/" + r.instance.id + "/criu-restore.log";
      const lines = fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").length - 1 : null;
      console.log(JSON.stringify({ level: +process.argv[2], round: +process.argv[3], readyMs: r.readyMs, criuMs: ph("criu-restore"), lines, id: r.instance.id }));
    ' "$r" "$l" "$round" | tee -a "$OUT/runs.jsonl"
    id=$(node -e 'console.log(JSON.parse(process.argv[1]).instance.id)' "$r")
    STASIS_NO_DAEMON=1 node dist/cli/main.js stop "$id" --grace 5 >/dev/null
  done
done
node -e '
  const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const table = [...new Set(runs.map((r) => r.level))].map((level) => {
    const of = runs.filter((r) => r.level === level);
    return { level, n: of.length, readyMs: med(of.map((r) => r.readyMs)), criuMs: med(of.map((r) => r.criuMs)), lines: med(of.map((r) => r.lines)) };
  });
  console.log("| CRIU log level | restores | ready, median (ms) | criu-restore, median (ms) | log lines |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const t of table) console.log(`| -v${t.level} | ${t.n} | ${t.readyMs.toFixed(0)} | ${t.criuMs.toFixed(0)} | ${t.lines} |`);
  require("fs").writeFileSync(process.argv[2], JSON.stringify({ date: new Date().toISOString(), runs, table }, null, 2));
' "$OUT/runs.jsonl" "$OUT/criu-log-level.json"
echo "runs: $OUT/runs.jsonl"
