# Sourced by every suite: Python packages the GPU machine lacks (pytest; uvloop 0.22.1, since the machine's
# uvloop 0.23 opens an io_uring instance CRIU cannot dump) from the carried .whl folder, and small helpers.
if [ -d .whl ] && [ ! -d /tmp/site ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >/dev/null ||
    echo "warning: the carried wheels do not install here (they are for the GPU machine's Python 3.12)"
fi
[ -d /tmp/site ] && export PYTHONPATH="/tmp/site:$PYTHONPATH"
# The newest instance folder under $STASIS_HOME/instances (with its trailing /), or nothing. Not `ls | head -1`: under
# pipefail, head leaving after one line can kill ls with SIGPIPE and fail the pipeline, and the suite with it.
newest_instance() {
  local all
  all=$(ls -dt "$STASIS_HOME"/instances/*/ 2>/dev/null) || return 0
  printf '%s' "${all%%$'\n'*}"
}
# Run a step with a time limit; its output goes to $OUT/<name>.log and to the terminal.
step() {
  local name=$1 limit=$2
  shift 2
  echo "== step $name (limit ${limit}s)"
  local t0=$(date +%s%N)
  set +e
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "${LOGS:-$OUT}/$name.log"
  local rc=${PIPESTATUS[0]}
  set -e
  printf '%-28s rc=%-4s %8s ms\n' "$name" "$rc" "$(( ($(date +%s%N) - t0) / 1000000 ))" >> "$OUT/steps.txt"
  return 0
}
