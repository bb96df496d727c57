#!/usr/bin/env bash
# Two builds of stasis side by side on the example server: restore-hot (a `stasis restore` process, timed from its
# spawn to the canary) of the same server captured by each, rounds interleaved so a noisy machine spreads its noise.
#   bench/restore-ab.sh A_LABEL A_MAIN_JS B_LABEL B_MAIN_JS [ROUNDS] [OUT_DIR]
# e.g. bench/restore-ab.sh before /work/old/dist/cli/main.js after dist/cli/main.js 3
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 AJS=$2 B=$3 BJS=$4 ROUNDS=${5:-3}
OUT=${6:-bench/results/$(date -u +%F)-$(hostname)/restore-ab}
mkdir -p "$OUT"
homes=()
trap 'for h in "${homes[@]}"; do STASIS_HOME=$h node "$BJS" stop --all --grace 1 >/dev/null 2>&1 || true; rm -rf "$h"; done' EXIT
for label in "$A" "$B"; do
  js=$AJS; [ "$label" = "$B" ] && js=$BJS
  home=$(mktemp -d /tmp/stasis-ab-home.XXXXXX); homes+=("$home")
  PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  STASIS_HOME=$home node "$js" capture slow --ready-url "http://127.0.0.1:$PORT/health" \
    --canary-url "http://127.0.0.1:$PORT/answer?q=ab" --warmup 3 -- python3 "$PWD/examples/slow_server.py" \
    --port "$PORT" --startup-seconds 1 >/dev/null
  echo "$label $home" >> "$OUT/homes.txt"
done
: > "$OUT/runs.txt"
for round in $(seq 1 "$ROUNDS"); do
  for label in "$A" "$B"; do
    js=$AJS; [ "$label" = "$B" ] && js=$BJS
    home=$(awk -v l="$label" '$1==l{print $2}' "$OUT/homes.txt" | tail -1)
    STASIS_HOME=$home node "$js" bench slow --strategies restore-hot --repeat 5 --json 2>/dev/null |
      node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);const h=(r.report??r).strategies.find(x=>x.strategy==="restore-hot");console.log(process.argv[1], h.runs.map(x=>Math.round(x.readyMs)).join(" "))})' "$label" |
      tee -a "$OUT/runs.txt"
  done
done
node -e '
const lines=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").map(l=>l.split(" "));
const by={};for(const [l,...ms] of lines)(by[l]??=[]).push(...ms.map(Number));
const med=a=>{a=[...a].sort((x,y)=>x-y);return a.length%2?a[(a.length-1)/2]:(a[a.length/2-1]+a[a.length/2])/2};
for(const [l,a] of Object.entries(by))console.log(`${l}: restore-hot to ready, median ${med(a)} ms of ${a.length} (${a.join(", ")})`);
' "$OUT/runs.txt" | tee "$OUT/summary.txt"
