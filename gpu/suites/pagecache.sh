# The page cache: `stasis prefetch` against vmtouch -t, cat and parallel dd on 8 x 1 GiB, page cache dropped before each
# case (bench/pagecache.mjs). Knobs: PC_ARGS (more bench arguments). vmtouch comes from .cache/pcbench (carried).
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
step pagecache 480 node bench/pagecache.mjs --stasis "$(command -v stasis)" --vmtouch .cache/pcbench/vmtouch --label gpu-h100 --out "$OUT" --size-mib 1024 ${PC_ARGS:-}
echo; echo "== results"; cat "$OUT"/pagecache-*.md 2>/dev/null | sed -n '/^| kind/,$p'; cat "$OUT/steps.txt"
