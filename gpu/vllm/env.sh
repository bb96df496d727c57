# The environment `vllm serve` needs to be captured by stasis on the GPU machine; sourced by gpu/suites/vllm.sh and
# quoted by the README's vLLM recipe. VLLM_SITE: where gpu/vllm/device/install.sh unpacked vLLM (/opt/vllm-site).
# STASIS_PYTHON_DIR: the folder holding the stasis_engine package (this checkout's python/).
VLLM_SITE=${VLLM_SITE:-/opt/vllm-site}
STASIS_PYTHON_DIR=${STASIS_PYTHON_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../python" && pwd)}
# stasis_engine on vLLM's Python path: the worker extension (--worker-extension-cls) and the weights stager import it.
export PYTHONPATH="$VLLM_SITE:$STASIS_PYTHON_DIR${PYTHONPATH:+:$PYTHONPATH}" PATH="$VLLM_SITE/bin:$PATH"
export VLLM_SERVER_DEV_MODE=1          # /sleep, /wake_up, /is_sleeping, /collective_rpc, /reset_prefix_cache
export VLLM_USE_FLASHINFER_SAMPLER=0   # this machine's vLLM carries no FlashInfer; elsewhere not needed
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1  # nothing asks the network
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
