"""What a worker's parallel setup holds that the CUDA checkpoint must know about (``stasis_parallel``).

A tensor-parallel vLLM runs one worker process per GPU; between them sit NCCL communicators and, on CUDA, up to
three all-reduce paths that map the other workers' GPU memory into this one (docs/tensor-parallel.md):

- vLLM's custom all-reduce (``CustomAllreduce``: buffers shared with ``cudaIpcGetMemHandle`` /
  ``cudaIpcOpenMemHandle``, and the CUDA graphs' buffers registered by address), on unless
  ``--disable-custom-all-reduce``;
- torch symmetric memory (``SymmMemCommunicator``: a multicast object over every rank's buffer), on by default
  where the GPU supports multicast, off with ``VLLM_ALLREDUCE_USE_SYMM_MEM=0``;
- FlashInfer's all-reduce (``FlashInferAllReduce``, IPC workspaces), off unless ``VLLM_ALLREDUCE_USE_FLASHINFER=1``.

Each is read from the live communicator (``disabled`` is vLLM's own verdict after its checks), never guessed
from flags. Nothing here imports vLLM at import time; ``parallel_state`` is passed in by tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# NCCL's transports and memory settings that decide what cross-process GPU state a communicator holds.
NCCL_VARIABLES = (
    "NCCL_P2P_DISABLE",
    "NCCL_SHM_DISABLE",
    "NCCL_NVLS_ENABLE",
    "NCCL_CUMEM_ENABLE",
    "NCCL_CUMEM_HOST_ENABLE",
    "NCCL_IB_DISABLE",
)


def parallel_facts(worker: Any, parallel_state: Any = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The worker's place in the parallel layout and which cross-process all-reduce paths are live in its
    tensor-parallel group. ``worker`` is vLLM's worker (``rank``, ``local_rank``, ``parallel_config``)."""
    env = os.environ if environ is None else environ
    config = getattr(worker, "parallel_config", None)
    facts: dict[str, Any] = {
        "world_size": _int(getattr(config, "world_size", 1), 1),
        "tensor_parallel_size": _int(getattr(config, "tensor_parallel_size", 1), 1),
        "pipeline_parallel_size": _int(getattr(config, "pipeline_parallel_size", 1), 1),
        "data_parallel_size": _int(getattr(config, "data_parallel_size", 1), 1),
        "local_rank": _int(getattr(worker, "local_rank", 0), 0),
        "device": str(getattr(worker, "device", "")),
        "nccl_env": {k: env[k] for k in NCCL_VARIABLES if k in env},
    }
    facts["all_reduce"] = _all_reduce(_tp_communicator(parallel_state))
    return facts


def _tp_communicator(parallel_state: Any) -> Any:
    if parallel_state is None:
        try:
            from vllm.distributed import parallel_state as vllm_parallel_state
        except ImportError:
            return None
        parallel_state = vllm_parallel_state
    try:
        group = parallel_state.get_tp_group()
    except (AssertionError, AttributeError):  # no model-parallel group yet (vLLM asserts it is initialized)
        return None
    return getattr(group, "device_communicator", None)


def _all_reduce(comm: Any) -> dict[str, Any]:
    """Which all-reduce paths the TP group's device communicator has live; ``communicator`` names its class
    (``CudaCommunicator`` on GPUs, ``CpuCommunicator`` on the CPU build)."""

    def live(attr: str) -> bool:
        part = getattr(comm, attr, None)
        return part is not None and not bool(getattr(part, "disabled", True))

    return {
        "communicator": type(comm).__name__ if comm is not None else None,
        "custom": live("ca_comm"),
        "symm_mem": live("symm_mem_comm"),
        "flashinfer": live("fi_ar_comm"),
        "pynccl": live("pynccl_comm"),
    }


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
