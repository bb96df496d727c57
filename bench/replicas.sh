#!/usr/bin/env bash
# Replicas of one snapshot side by side: the example server (with BALLAST_MB of memory) captured once, then in each
# round, interleaved: one restore on the host's network, one restore into a namespace of its own (--publish), and
# N restores into namespaces of their own at once. Each restore's time to ready and its CRIU phase from --json;
# every replica stopped before the next step. The page cache is warm after the first round (restore-hot).
#   bench/replicas.sh [ROUNDS] [N] [BALLAST_MB] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3} N=${2:-3} BALLAST=${3:-300}
OUT=${4:-bench/results/$(date -u +%F)-devbox/replicas}
mkdir -p "$OUT"
MAIN=$PWD/dist/cli/main.js
home=$(mktemp -d /tmp/stasis-replicas.XXXXXX)
export STASIS_HOME=$home STASIS_NO_DAEMON=1
trap 'node "$MAIN" stop --all --grace 1 >/dev/null 2>&1 || true; node "$MAIN" rm rep >/dev/null 2>&1 || true; rm -rf "$home"' EXIT
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
node "$MAIN" capture rep --ready-url "http://127.0.0.1:$PORT/health" --canary-url "http://127.0.0.1:$PORT/answer?q=r" \
  -- python3 "$PWD/examples/slow_server.py" --port "$PORT" --startup-seconds 1 --ballast-mb "$BALLAST" >/dev/null
{ nproc; free -g | awk 'NR==2{print $2 " GiB"}'; uname -r; } > "$OUT/machine.txt"
: > "$OUT/runs.jsonl"
# One line per restore: {"round", "kind", "readyMs", "criuMs", "publishMs", "id"}.
record() { # KIND ROUND JSON_FILE
  node -e '
    const [kind, round, file] = process.argv.slice(1);
    const r = JSON.parse(require("fs").readFileSync(file, "utf8"));
    if (!r.instance) { console.error(JSON.stringify(r)); process.exit(1); }
    const ms = (n) => { const p = r.phases.find((x) => x.name === n); return p ? Math.round(p.endMs - p.startMs) : null; };
    console.log(JSON.stringify({ round: +round, kind, readyMs: Math.round(r.readyMs), criuMs: ms("criu-restore"), publishMs: ms("publish"), id: r.instance.id }));
  ' "$@" >> "$OUT/runs.jsonl"
}
stop_all() { node "$MAIN" stop --all --grace 1 >/dev/null; }
for round in $(seq 1 "$ROUNDS"); do
  node "$MAIN" restore rep --json > "$OUT/.host.json"; record host "$round" "$OUT/.host.json"; stop_all
  node "$MAIN" restore rep --publish 127.0.0.1 --json > "$OUT/.one.json"; record netns-1 "$round" "$OUT/.one.json"; stop_all
  pids=()
  for i in $(seq 1 "$N"); do node "$MAIN" restore rep --publish 127.0.0.1 --json > "$OUT/.par$i.json" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  for i in $(seq 1 "$N"); do record "netns-$N-at-once" "$round" "$OUT/.par$i.json"; done
  stop_all
done
rm -f "$OUT"/.*.json
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const med = (a) => { a = [...a].sort((x, y) => x - y); return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2; };
const kinds = [...new Set(rows.map((r) => r.kind))];
console.log("| restore | n | ready, median (all) ms | CRIU phase, median ms | publish, median ms |");
console.log("| --- | --- | --- | --- | --- |");
for (const k of kinds) {
  const rs = rows.filter((r) => r.kind === k);
  const f = (key) => rs.map((r) => r[key]).filter((x) => x !== null);
  const pub = f("publishMs");
  console.log(`| ${k} | ${rs.length} | ${med(f("readyMs"))} (${f("readyMs").join(", ")}) | ${med(f("criuMs"))} | ${pub.length ? med(pub) : "-"} |`);
}
' "$OUT/runs.jsonl" | tee "$OUT/summary.md"
