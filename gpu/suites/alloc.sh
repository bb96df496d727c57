# The 3B reference engine's GPU memory at sleep level 2 (what the CUDA checkpoint copies into a snapshot) under
# torch allocator settings side by side, each run checking that sleep 1/2 + wake + refill answer identically.
# Knob: ALLOC_CONFS, ';'-separated PYTORCH_CUDA_ALLOC_CONF values ("default" = unset). Table printed last.
set -euo pipefail
source gpu/suites/_common.sh
: > "$OUT/steps.txt"
IFS=';' read -ra CONFS <<< "${ALLOC_CONFS:-default;expandable_segments:True}"
i=0
for conf in "${CONFS[@]}"; do
  i=$((i + 1))
  warm=$([ $i -gt 1 ] && echo --warm || true)  # the first run is cold (empty caches); the rest reuse its compile
  if [ "$conf" = default ]; then
    step "alloc-$i" 280 bash -c "cd python && python3 ../bench/reference_startup.py $warm --out $OUT/alloc-$i"
  else
    step "alloc-$i" 280 env PYTORCH_CUDA_ALLOC_CONF="$conf" bash -c "cd python && python3 ../bench/reference_startup.py $warm --out $OUT/alloc-$i"
  fi
  echo "PYTORCH_CUDA_ALLOC_CONF=$conf" > "$OUT/alloc-$i/conf.txt"
done
echo; echo "== results"
i=0
for conf in "${CONFS[@]}"; do
  i=$((i + 1))
  echo "-- PYTORCH_CUDA_ALLOC_CONF=$conf"
  grep -E "time to ready|phase torch_compile|sleep2|check|RESULT|decode" "$OUT/alloc-$i.log" || true
done
cat "$OUT/steps.txt"
