"""The engine: start-up as vLLM does it (timed phases), greedy generation, sleep levels 1/2, wake, refill.

States: weights ``ready`` | ``asleep`` (no memory behind the addresses) | ``stale`` (memory back after a
level-2 sleep, contents not yet refilled); KV cache ``ready`` | ``asleep``. Generation needs both ready;
anything else is refused with a code saying what to do, never answered with garbage.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..errors import StasisEngineError
from . import memory
from .arena import Arena, HostArena
from .kv_cache import KVCache, KVShape
from .model import bind_weights, build_meta_model, load_config, materialize_buffers, plan_weights, read_safetensors
from .options import ServeOptions, model_info, read_model_config
from .phases import Phases, emit
from .rpc import RpcMethods
from .runner import Runner
from .tokenizer import BOS_ID

TAGS = ("weights", "kv_cache")


def resolve_device(name: str) -> torch.device:
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise StasisEngineError("no_cuda", "--device cuda, but torch sees no CUDA device", "use --device cpu")
    return torch.device("cuda", torch.cuda.current_device())


class Engine:
    def __init__(self, opts: ServeOptions, phases: Phases) -> None:
        self.opts, self.phases = opts, phases
        self.info = model_info(opts, read_model_config(opts.model_dir))
        self.weights_state = self.kv_state = "ready"
        self.sleep_level = 0
        self._backup: torch.Tensor | None = None
        self.rpc = RpcMethods(self)

    # -- start-up -------------------------------------------------------------------------------------------

    def start(self) -> None:
        p = self.phases
        with p.phase("init_device") as i:
            self.device = resolve_device(self.opts.device)
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
                torch.zeros(1, device=self.device)  # creates the context the driver-API arenas use
                i["gpu"] = torch.cuda.get_device_name(self.device)
            i["device"] = str(self.device)
        with p.phase("build_model") as i:
            self.config = load_config(self.opts.model_dir)
            self.model = build_meta_model(self.config)
            self.slots, weight_bytes = plan_weights(self.model)
            self.dtype = self.config.dtype if isinstance(self.config.dtype, torch.dtype) else torch.float32
            i.update(parameters=len(self.slots), dtype=str(self.dtype).removeprefix("torch."))
        with p.phase("allocate_weights", bytes=weight_bytes):
            self.weights = self._arena("weights", weight_bytes)
            self.views = bind_weights(self.model, self.weights.tensor(), self.slots)
            materialize_buffers(self.model, self.config, self.device)
        with p.phase("load_weights") as i:
            i.update(read_safetensors(self.opts.model_dir, self.views, bool(self.config.tie_word_embeddings)))
        shape = KVShape(self.config, self.opts.max_batch, self.info.max_model_len)
        with p.phase(
            "allocate_kv_cache",
            bytes=shape.arena_bytes(self.dtype),
            max_batch=shape.max_batch,
            max_model_len=self.info.max_model_len,
            slots=shape.max_len,
        ):
            self.kv_arena = self._arena("kv_cache", shape.arena_bytes(self.dtype))
            start = torch.zeros((), dtype=torch.long, device=self.device)
            self.kv = KVCache(self.kv_arena.tensor(), shape, self.dtype, start)
            self.kv.zero_()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # charge the zeroing to this phase
        self.runner = Runner(
            self.model, self.kv, self.device, self.opts.cuda_graph_sizes, self.opts.prefill_graph_widths
        )
        if self._compile_enabled():
            with p.phase("torch_compile") as i:
                i.update(self.runner.compile(self.opts.compile_backend))
        if self.device.type == "cuda" and not self.opts.enforce_eager:
            with p.phase("cuda_graph_capture") as i:
                i.update(self.runner.capture())
        with p.phase("warmup"):
            self.runner.generate([[BOS_ID, 1, 2, 3]], 2, None, [])
        memory.trim(self.device)
        memory.freeze_startup_objects()

    def _compile_enabled(self) -> bool:
        if self.opts.enforce_eager:
            return False
        return self.opts.compile if self.opts.compile is not None else self.device.type == "cuda"

    def _arena(self, name: str, size: int) -> Arena:
        if self.device.type == "cuda":
            from .cuda_arena import CudaArena

            return CudaArena(name, size, self.device.index or 0)
        return HostArena(name, size)

    def profile_extra(self) -> dict[str, Any]:
        return {
            "device": str(self.device),
            "model_dir": self.opts.model_dir,
            "served_model_name": self.info.served_name,
            "max_model_len": self.info.max_model_len,
            "weights_bytes": self.weights.size,
            "kv_cache_bytes": self.kv_arena.size,
            "cuda_graph_sizes": list(self.opts.cuda_graph_sizes),
            "prefill_graph_widths": list(self.opts.prefill_graph_widths),
            "compile": self.runner.info.compile,
            "cuda_graphs": self.runner.info.cuda_graphs,
            "memory": memory.snapshot(self.device, pools=True),
        }

    # -- serving --------------------------------------------------------------------------------------------

    def generate(
        self, prompts: list[list[int]], max_tokens: int, logprobs: int | None, stop_token_ids: list[int]
    ) -> list[dict[str, Any]]:
        self.require_serving()
        return self.runner.generate(prompts, max_tokens, logprobs, stop_token_ids)

    def require_serving(self) -> None:
        asleep = [n for n, s in (("weights", self.weights_state), ("kv_cache", self.kv_state)) if s == "asleep"]
        if asleep:
            raise StasisEngineError(
                "engine_asleep",
                f"the engine is asleep (level {self.sleep_level}; asleep: {', '.join(asleep)})",
                "POST /wake_up first",
            )
        if self.weights_state == "stale":
            raise StasisEngineError(
                "weights_not_loaded",
                "the weights were discarded by sleep level 2 and not refilled",
                "POST /collective_rpc with method stasis_load_weights (or reload_weights), then serve",
            )

    def is_sleeping(self) -> bool:
        return "asleep" in (self.weights_state, self.kv_state)

    # -- sleep and wake -------------------------------------------------------------------------------------

    def sleep(self, level: int) -> dict[str, Any]:
        if level not in (1, 2):
            raise StasisEngineError("bad_request", f"level={level!r}, expected 1 or 2")
        start = time.perf_counter()
        if level == 1 and self.weights_state == "ready":
            self._backup = self._host_copy(self.weights.tensor())
        if level == 2:
            self._backup = None
        if self.weights_state != "asleep":
            self.weights.release()
            self.weights_state = "asleep"
        if self.kv_state != "asleep":
            self.kv_arena.release()
            self.kv_state = "asleep"
        self.sleep_level = 1 if self._backup is not None else 2  # no host copy: the weights need a refill
        # The state a snapshot is taken in: what the heap freed must not go into the image as dirty pages.
        host_trim = memory.trim(self.device, measure=True)
        out = {
            "level": self.sleep_level,
            "ms": round((time.perf_counter() - start) * 1000, 1),
            "backup_bytes": self._backup.numel() if self._backup is not None else 0,
            "is_sleeping": self.is_sleeping(),
            "host_trim": host_trim,
            "memory": memory.snapshot(self.device, pools=True),
        }
        emit("stasis-sleep", out)
        return out

    def wake(self, tags: list[str] | None) -> dict[str, Any]:
        tags = tags or list(TAGS)
        unknown = [t for t in tags if t not in TAGS]
        if unknown:
            raise StasisEngineError("bad_request", f"unknown wake_up tag {unknown[0]!r}", f"tags are {', '.join(TAGS)}")
        start = time.perf_counter()
        freed_backup = False
        if "weights" in tags and self.weights_state == "asleep":
            self.weights.restore()
            if self._backup is not None:
                self.weights.tensor().copy_(self._backup)
                self._backup = None
                freed_backup = True
                self.weights_state = "ready"
            else:
                self.weights_state = "stale"
        if "kv_cache" in tags and self.kv_state == "asleep":
            self.kv_arena.restore()
            self.kv.zero_()
            self.kv_state = "ready"
        if not self.is_sleeping():
            self.sleep_level = 0
        if freed_backup:  # wake is on the restore path: only pay for the trim when there is something to give back
            memory.trim(self.device, collect=False)
        out = {
            "tags": tags,
            "ms": round((time.perf_counter() - start) * 1000, 1),
            "weights": self.weights_state,
            "kv_cache": self.kv_state,
            "is_sleeping": self.is_sleeping(),
            "memory": memory.snapshot(self.device),
        }
        emit("stasis-wake", out)
        return out

    def adopt_weights(self, fd: int, size: int) -> dict[str, Any]:
        """Wake the weights on memory another process filled (the stager's file descriptor): wake plus refill,
        without a copy. Only from sleep level 2 with the weights on the GPU; nothing changes on failure."""
        if self.weights_state != "asleep":
            raise StasisEngineError(
                "weights_awake",
                f"the weights are {self.weights_state}, not asleep",
                "adopt is instead of /wake_up?tags=weights, on a sleeping engine",
            )
        adopt = getattr(self.weights, "adopt", None)
        if adopt is None or self._backup is not None:
            raise StasisEngineError(
                "stage_unsupported",
                "these weights cannot adopt staged GPU memory (CPU engine, or a level-1 sleep holding a host copy)",
                "wake and refill instead",
            )
        start = time.perf_counter()
        adopt(fd, size)
        self.weights_state = "ready"
        if not self.is_sleeping():
            self.sleep_level = 0
        out = {"bytes": size, "ms": round((time.perf_counter() - start) * 1000, 1), "weights": self.weights_state}
        emit("stasis-adopt-weights", out)
        return out

    def _host_copy(self, t: torch.Tensor) -> torch.Tensor:
        if t.is_cuda:
            host = torch.empty(t.numel(), dtype=torch.uint8, pin_memory=True)
            host.copy_(t)
            return host
        return t.clone()

    def status(self) -> dict[str, Any]:
        return {
            "weights": self.weights_state,
            "kv_cache": self.kv_state,
            "sleep_level": self.sleep_level,
            "is_sleeping": self.is_sleeping(),
            "memory": memory.snapshot(self.device),
        }
