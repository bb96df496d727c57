# The GPU machine's shell for the vLLM suite: `vllm` (gpu/vllm/device/install.sh unpacked it into VLLM_SITE, no venv)
# and stasis_engine importable. What the server itself needs is passed by `stasis capture --env` in the suite, as the
# README's vLLM recipe says. Sourced by gpu/suites/vllm.sh.
VLLM_SITE=${VLLM_SITE:-/opt/vllm-site}
STASIS_PYTHON_DIR=${STASIS_PYTHON_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../python" && pwd)}
export VLLM_SITE PYTHONPATH="$VLLM_SITE:$STASIS_PYTHON_DIR${PYTHONPATH:+:$PYTHONPATH}" PATH="$VLLM_SITE/bin:$PATH"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1  # this machine is offline
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
# What `stasis capture` gives vLLM in the suites: the README's recipe and this machine's offline switches, in one
# place (gpu/suites/vllm.sh spells the recipe out as the README does, on purpose).
# shellcheck disable=SC2034  # used by the suites that source this
VLLM_CAPTURE_ENV=(--env VLLM_SERVER_DEV_MODE=1 --env "PYTHONPATH=$STASIS_PYTHON_DIR:$VLLM_SITE"
                  --env VLLM_NO_USAGE_STATS=1 --env HF_HUB_OFFLINE=1 --env VLLM_USE_FLASHINFER_SAMPLER=0)
