#!/usr/bin/env bash
# Snapshots from object storage, measured: the example server (examples/slow_server.py with BALLAST_MB MiB of random
# memory, default 1024) captured, pushed to a real S3 server on loopback (versitygw over a folder,
# scripts/s3-server.sh), then, REPEAT times (default 3), side by side on the same bytes:
#   push             stasis push to a fresh prefix, chunks in parallel parts of 16 MiB (STASIS_REMOTE_PART_MB=16)
#   push-whole       the same, each chunk one PUT (STASIS_REMOTE_PART_MB=0; unset pushes whole too)
#   pull-cold        stasis pull, the server's files not in the page cache, the node's chunk cache empty
#   pull-hot         stasis pull, the server's files in the page cache, the chunk cache empty
#   pull-hot-whole   the same, each chunk one GET (STASIS_REMOTE_PART_MB=0)
#   pull-cache       stasis pull, every chunk from the node's chunk cache
#   read-disk        the pulled snapshot's files read (cat) from disk, not in the page cache
#   read-pagecache   the same files read from the page cache
#   restore-remote   stasis restore s3://... (cache empty, server's files in the page cache): the restore runs
#                    while the snapshot arrives
#   pull-then-restore  stasis pull, then stasis restore of it (the same conditions): the two steps one after the other
#   restore-local    stasis restore of the snapshot already in the store (in the page cache)
# WEIGHTS_MB (default 0): a weights file of that many MiB of random bytes added to the snapshot, as an engine's
# snapshot has one (this server reads none): what a restore from the store fetches after CRIU's images.
# Only the files measured are dropped from the page cache (stasis evict), not the whole machine's.
#   bench/remote.sh [OUT_DIR]      (default bench/results/<date>-<host>/remote)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/$(date -u +%F)-$(hostname)/remote}
REPEAT=${REPEAT:-3}
BALLAST_MB=${BALLAST_MB:-1024}
WEIGHTS_MB=${WEIGHTS_MB:-0}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export STASIS_HOME=$(mktemp -d /tmp/stasis-bench-home.XXXXXX)
S3_DIR=$(mktemp -d /tmp/stasis-bench-s3.XXXXXX)
stasis() { node "$PWD/dist/cli/main.js" "$@"; }
cleanup() {
  stasis stop --all --grace 1 >/dev/null 2>&1 || true
  scripts/s3-server.sh stop "$S3_DIR" || true
  rm -rf "$STASIS_HOME" "$S3_DIR"
}
trap cleanup EXIT
set -a
# shellcheck disable=SC1091
eval "$(scripts/s3-server.sh start "$S3_DIR" bench)"
set +a
STORE=s3://bench/fleet
now_ms() { date +%s%3N; }
RESULTS="$OUT/runs.jsonl"
: >"$RESULTS"
record() { # case, run, wall ms, bytes, extra json
  echo "{\"case\":\"$1\",\"run\":$2,\"wallMs\":$3,\"bytes\":$4${5:+,$5}}" >>"$RESULTS"
  echo "$1 run $2: $3 ms" >&2
}
evict_bucket() { sync; stasis evict "$S3_DIR/data" --quiet >/dev/null; }
fresh() { stasis rm p >/dev/null 2>&1 || true; rm -rf "$STASIS_HOME/cache/chunks"; }

PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
stasis capture slow --quiet --ready-url "http://127.0.0.1:$PORT/health" --canary-url "http://127.0.0.1:$PORT/ballast" \
  -- python3 "$PWD/examples/slow_server.py" --port "$PORT" --startup-seconds 0 --ballast-mb "$BALLAST_MB" >/dev/null
if [ "$WEIGHTS_MB" -gt 0 ]; then
  node - "$STASIS_HOME/snapshots/slow" "$WEIGHTS_MB" <<'JS'
const fs = require("fs"), crypto = require("crypto"), path = require("path");
const [dir, mb] = process.argv.slice(2);
const CHUNK = 64 * 1024 * 1024, size = Number(mb) * 1024 * 1024, chunks = [];
fs.mkdirSync(path.join(dir, "weights"), { mode: 0o700 });
const fd = fs.openSync(path.join(dir, "weights", "model.bin"), "w", 0o600);
for (let at = 0; at < size; at += CHUNK) {
  const buf = crypto.randomBytes(Math.min(CHUNK, size - at));
  fs.writeSync(fd, buf);
  chunks.push(crypto.createHash("sha256").update(buf).digest("hex"));
}
fs.closeSync(fd);
const combined = crypto.createHash("sha256");
for (const c of chunks) combined.update(c); // as store/digest.ts combine()
const m = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
const sha256 = combined.digest("hex");
m.files.push({ path: "weights/model.bin", role: "weights", size, sha256, chunkSize: CHUNK, chunks });
fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(m, null, 2) + "\n");
JS
fi
stasis push slow "$STORE" --json >"$OUT/push.json"

for run in $(seq "$REPEAT"); do
  BYTES=$(node -e 'const m=require(process.argv[1]);console.log(m.files.reduce((a,f)=>a+f.size,0))' \
    "$STASIS_HOME/snapshots/slow/manifest.json")
  t=$(now_ms); STASIS_REMOTE_PART_MB=16 stasis push slow "s3://bench/push-$run" --quiet >/dev/null; t2=$(now_ms)
  record push "$run" $((t2 - t)) "$BYTES"
  t=$(now_ms); STASIS_REMOTE_PART_MB=0 stasis push slow "s3://bench/push-whole-$run" --quiet >/dev/null
  t2=$(now_ms)
  record push-whole "$run" $((t2 - t)) "$BYTES"
  stasis rm slow >/dev/null

  fresh; evict_bucket
  t=$(now_ms); stasis pull "$STORE/slow" p --json >"$OUT/pull.json"; t2=$(now_ms)
  BYTES=$(node -e 'console.log(require(process.argv[1]).bytes)' "$OUT/pull.json")
  record pull-cold "$run" $((t2 - t)) "$BYTES"

  fresh; cat "$S3_DIR"/data/bench/fleet/chunks/* >/dev/null
  t=$(now_ms); stasis pull "$STORE/slow" p --json >"$OUT/pull-hot.json"; t2=$(now_ms)
  record pull-hot "$run" $((t2 - t)) "$BYTES" \
    "\"durationMs\":$(node -e 'console.log(require(process.argv[1]).durationMs)' "$OUT/pull-hot.json")"

  fresh; cat "$S3_DIR"/data/bench/fleet/chunks/* >/dev/null
  t=$(now_ms); STASIS_REMOTE_PART_MB=0 stasis pull "$STORE/slow" p --quiet >/dev/null; t2=$(now_ms)
  record pull-hot-whole "$run" $((t2 - t)) "$BYTES"

  stasis rm p >/dev/null
  t=$(now_ms); stasis pull "$STORE/slow" p --json >"$OUT/pull-cache.json"; t2=$(now_ms)
  record pull-cache "$run" $((t2 - t)) "$BYTES" "\"fromCache\":$(node -e 'console.log(require(process.argv[1]).fromCache)' "$OUT/pull-cache.json")"

  sync; stasis evict --snapshot p --quiet >/dev/null
  t=$(now_ms); find "$STASIS_HOME/snapshots/p" -type f -exec cat {} + >/dev/null; t2=$(now_ms)
  record read-disk "$run" $((t2 - t)) "$BYTES"
  t=$(now_ms); find "$STASIS_HOME/snapshots/p" -type f -exec cat {} + >/dev/null; t2=$(now_ms)
  record read-pagecache "$run" $((t2 - t)) "$BYTES"

  fresh; cat "$S3_DIR"/data/bench/fleet/chunks/* >/dev/null
  t=$(now_ms); stasis restore "$STORE/slow" --json >"$OUT/restore-remote.json"; t2=$(now_ms)
  ID=$(node -e 'const r=require(process.argv[1]);console.log(r.instance.id)' "$OUT/restore-remote.json")
  # In the same command: when it served (the canary's end, on its clock) and how long its transfer took.
  INRUN=$(node -e 'const r=require(process.argv[1]);const s=r.pull.streamed;
    const served=Math.max(...r.phases.filter((p)=>p.name==="canary").map((p)=>p.endMs));
    const c=r.phases.find((p)=>p.name==="criu-restore");
    console.log(`"restoreReadyMs":${r.readyMs},"servedAtMs":${served},"transferMs":${s.allFilesMs-s.transferStartMs},` +
      `"criuStartMs":${c.startMs},"criuEndMs":${c.endMs},"allFilesMs":${s.allFilesMs}`)' "$OUT/restore-remote.json")
  record restore-remote "$run" $((t2 - t)) "$BYTES" "$INRUN"
  stasis stop "$ID" >/dev/null

  stasis rm slow >/dev/null; rm -rf "$STASIS_HOME/cache/chunks"; cat "$S3_DIR"/data/bench/fleet/chunks/* >/dev/null
  t=$(now_ms); stasis pull "$STORE/slow" --quiet >/dev/null; stasis restore slow --json >"$OUT/pull-then-restore.json"
  t2=$(now_ms)
  ID=$(node -e 'const r=require(process.argv[1]);console.log(r.instance.id)' "$OUT/pull-then-restore.json")
  record pull-then-restore "$run" $((t2 - t)) "$BYTES"
  stasis stop "$ID" >/dev/null

  t=$(now_ms); stasis restore slow --json >"$OUT/restore-local.json"; t2=$(now_ms)
  ID=$(node -e 'const r=require(process.argv[1]);console.log(r.instance.id)' "$OUT/restore-local.json")
  READY=$(node -e 'console.log(require(process.argv[1]).readyMs)' "$OUT/restore-local.json")
  record restore-local "$run" $((t2 - t)) "$BYTES" "\"restoreReadyMs\":$READY"
  stasis stop "$ID" >/dev/null
done

node - "$RESULTS" "$OUT/README.md" "$BALLAST_MB" "$WEIGHTS_MB" <<'JS'
const fs = require("fs");
const [file, out, mb, weightsMb] = process.argv.slice(2);
const wmb = Number(weightsMb);
const runs = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const cases = [...new Set(runs.map((r) => r.case))];
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const rows = cases.map((c) => {
  const rs = runs.filter((r) => r.case === c);
  const ms = med(rs.map((r) => r.wallMs));
  const bytes = rs[0].bytes;
  return `| ${c} | ${rs.map((r) => r.wallMs).join(", ")} | ${ms} | ${(bytes / 1e6 / (ms / 1000)).toFixed(0)} |`;
});
// The target: restore s3:// against (bytes needed / the transfer rate of the same run), run by run. The rate is the
// pull's, server's files in the page cache as for the restore: its command's wall time (start-up and commit
// included, as the restore's), and, stricter, its own duration (from its start in the process to the commit).
const ratios = [...new Set(runs.map((r) => r.run))].map((run) => {
  const get = (c) => runs.find((r) => r.case === c && r.run === run);
  const rr = get("restore-remote"), hot = get("pull-hot"), seq = get("pull-then-restore");
  return {
    run,
    wall: rr.wallMs / hot.wallMs,
    strict: rr.wallMs / hot.durationMs,
    seq: seq.wallMs / hot.wallMs,
    inRun: rr.servedAtMs / rr.transferMs,
  };
});
const fmt = (xs) => xs.map((x) => x.toFixed(2)).join(", ");
const row = (what, k) => `| ${what} | ${fmt(ratios.map((r) => r[k]))} | ${med(ratios.map((r) => r[k])).toFixed(2)}x |`;
fs.writeFileSync(out, [
  `# Snapshots from object storage over loopback (bench/remote.sh)`,
  ``,
  `The example server with ${mb} MiB of random memory${wmb > 0 ? ` and a weights file of ${wmb} MiB` : ""}:`,
  `a snapshot of`,
  `${(runs[0].bytes / 1e6).toFixed(0)} MB, pushed to`,
  `versitygw (posix backend) on 127.0.0.1, then each case run ${Math.max(...runs.map((r) => r.run))} times, side by side.`,
  `Wall time of the whole command (a node process each: ~0.2-0.3 s of it is start-up). MB/s over the snapshot's bytes.`,
  ``,
  `| case | runs (ms) | median (ms) | MB/s |`,
  `| --- | --- | --- | --- |`,
  ...rows,
  ``,
  `restore s3:// against bytes / transfer rate (pull-hot), run by run:`,
  ``,
  `| against | runs | median |`,
  `| --- | --- | --- |`,
  row("pull-hot wall (the pull command, start-up to commit)", "wall"),
  row("pull-hot's own duration (no process start-up)", "strict"),
  row("the restore's own transfer (its command's start to serving, against its chunks' transfer time)", "inRun"),
  row("(pull-then-restore against pull-hot wall)", "seq"),
  ``,
  `runs.jsonl: every run; push.json, pull*.json, restore-*.json: the last run's --json documents.`,
  ``,
].join("\n"));
JS
cat "$OUT/README.md"
