# The weights loader's hot refill, by where the weights file lives: the disk's page cache (/var/tmp), a tmpfs of 4 KiB
# pages (/dev/shm) and a tmpfs of 2 MiB pages (mounted here for the run with huge=always, unmounted after).
# Also what a torch process holds on the GPU besides its tensors (bench/gpu_context.py: the CUDA checkpoint copies
# all of it).
# Knobs: DIRS (labels, default "var-tmp shm huge"), ONLY (weights_bench --only, default "stasis"), CONTEXT=0 (skip
# gpu_context.py).
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
LOGS=/tmp/stasis-logs && mkdir -p "$LOGS"
{
  echo "== machine"; findmnt -T /var/tmp -o TARGET,SOURCE,FSTYPE,OPTIONS | tail -1; findmnt -T /dev/shm -o TARGET,FSTYPE,OPTIONS | tail -1
  echo "THP enabled: $(cat /sys/kernel/mm/transparent_hugepage/enabled); shmem: $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled)"
} | tee "$OUT/refill.txt"
[ "${CONTEXT:-1}" = 0 ] || step gpu-context 90 bash -c "python3 bench/gpu_context.py > $LOGS/gpu-context.txt 2>&1"
HUGE=/mnt/stasis-huge
DIRS=${DIRS:-var-tmp shm huge}
if [[ " $DIRS " == *" huge "* ]]; then
  mkdir -p $HUGE && mount -t tmpfs -o huge=always,size=16G stasis-huge $HUGE
  echo "note: mounted a 16G tmpfs with huge=always at $HUGE for this run (unmounted at the end)" | tee -a "$OUT/refill.txt"
  trap 'umount $HUGE 2>/dev/null || true' EXIT
fi
declare -A WHERE=([var-tmp]=/var/tmp [shm]=/dev/shm [huge]=$HUGE)
for label in $DIRS; do
  dir=${WHERE[$label]}
  step "weights-$label" 200 bash -c "cd python && python3 ../bench/weights_bench.py --dir $dir --no-cold --repeat 3 --only '${ONLY:-stasis}' --out $LOGS/w-$label"
  grep -h "FileHugePages\|ShmemHugePages" /proc/meminfo | sed "s/^/$label after: /" >> "$OUT/refill.txt"
done
{
  [ -f $LOGS/gpu-context.txt ] && { echo; echo "== GPU memory of a torch process (bench/gpu_context.py)"; cat $LOGS/gpu-context.txt; }
  for l in $DIRS; do echo; echo "== weights file in $l"; sed -n '/^| method/,/^$/p' $LOGS/w-$l/results.md; done
} >> "$OUT/refill.txt"
# shellcheck disable=SC2086
tar -C $LOGS -czf "$OUT/weights-runs.tgz" $(for l in $DIRS; do echo w-$l; done) 2>/dev/null || true
echo; echo "== results"; cat "$OUT/refill.txt"; echo; cat "$OUT/steps.txt"
