"""Greedy generation over the arena-backed model: eager prefill, then decode steps that are compiled
(``torch.compile``) and replayed from CUDA graphs captured per batch size, as vLLM does.

A single prompt's prefill is left-padded to the smallest of ``prefill_widths`` that holds it and replayed from a
CUDA graph captured for that width (launching a 28-layer model's kernels one by one from Python takes longer on
the H100 than running them); batches and longer prompts prefill eagerly.

A batch is left-padded to its longest prompt. Row ``i`` with ``pad[i]`` padding slots sees cache slots
``[pad[i], current]``; pad positions see only themselves, so every attention row has a finite result and no
NaN can reach the cache. A batch of ``n`` runs in the smallest captured size ``b >= n``; the extra rows are
dummies (token 0, no padding) whose results are dropped.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch

from .kv_cache import KVCache

# The decoder layer's index, as dynamo names it inside ``LlamaDecoderLayer.forward``: dynamic from the first
# compile, so layer 0 gets no graph of its own.
LAYER_INDEX_SOURCE = "L['self']._modules['self_attn'].layer_idx"


@dataclass
class _Bucket:
    """Static inputs of one decode batch size, and its captured graph and outputs once captured."""

    ids: torch.Tensor
    pad: torch.Tensor
    cache: Any
    graph: Any = None
    out: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass
class RunnerInfo:
    compile: dict[str, Any] = field(default_factory=lambda: {"enabled": False})
    cuda_graphs: dict[str, Any] = field(default_factory=lambda: {"enabled": False})


class Runner:
    def __init__(
        self,
        model: torch.nn.Module,
        kv: KVCache,
        device: torch.device,
        sizes: tuple[int, ...],
        prefill_widths: tuple[int, ...] = (),
    ) -> None:
        self.model, self.kv, self.device = model, kv, device
        self.start = kv.start
        self.max_len = kv.shape.max_len
        self.sizes = tuple(sorted(sizes))
        self.max_batch = self.sizes[-1]
        self.info = RunnerInfo()
        kv_range = torch.arange(self.max_len, device=device)
        start = self.start

        def step(ids: torch.Tensor, pad: torch.Tensor, cache: Any) -> tuple[torch.Tensor, torch.Tensor]:
            qslot = start + torch.arange(ids.shape[1], device=ids.device)
            positions = (qslot[None, :] - pad[:, None]).clamp(min=0)
            kvr, qs = kv_range[None, None, :], qslot[None, :, None]
            visible = ((kvr >= pad[:, None, None]) & (kvr <= qs)) | (kvr == qs)
            out = model(
                input_ids=ids,
                position_ids=positions,
                attention_mask=visible[:, None],
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            logits = out.logits[:, -1, :]
            return logits, logits.argmax(dim=-1)

        self._step = step
        self._buckets = {
            b: _Bucket(
                torch.zeros((b, 1), dtype=torch.long, device=device),
                torch.zeros((b,), dtype=torch.long, device=device),
                kv.for_batch(b),
            )
            for b in self.sizes
        }
        # Single-prompt prefills: static inputs of each width (batch 1, the cache of batch size 1).
        widths = sorted(w for w in prefill_widths if w <= self.max_len)
        self._prefills = (
            {
                w: _Bucket(
                    torch.zeros((1, w), dtype=torch.long, device=device),
                    torch.zeros((1,), dtype=torch.long, device=device),
                    kv.for_batch(1),
                )
                for w in widths
            }
            if 1 in self.sizes
            else {}
        )
        self.prefill_replays = 0

    # -- start-up -------------------------------------------------------------------------------------------

    def compile(self, backend: str = "inductor") -> dict[str, Any]:
        """torch.compile the decoder layer, as vLLM does: one layer's code, compiled once, serves all layers.

        ``Module.compile`` on each layer shares one dynamo cache (the layers run the same code), and with
        ``allow_unspec_int_on_nn_module`` and ``LAYER_INDEX_SOURCE`` the layer index is a graph input from the
        first compile, not 28 constants. Every batch size is then run once, largest first: the largest compiles,
        the next makes the batch dimension dynamic and size 1 is specialized (3 graphs); the other layers and
        sizes reuse them. Prefill is not compiled (``_prefill``; single prompts replay a graph of the eager step).
        """
        import torch._dynamo
        import torch._inductor.async_compile
        import torch._inductor.config
        from torch._dynamo.utils import counters

        # A worker pool compiles in parallel; it is shut down below, so it never stays in the process tree
        # (and so never ends up in a snapshot).
        torch._inductor.config.compile_threads = int(os.environ.get("TORCHINDUCTOR_COMPILE_THREADS", "1"))
        torch._dynamo.config.allow_unspec_int_on_nn_module = True
        info: dict[str, Any] = {"enabled": True, "ok": True, "scope": "decoder_layer", "ms_per_size": {}}
        layers = list(self._decoder_layers())
        graphs_before = counters["stats"]["unique_graphs"]
        info["backend"] = backend
        for layer in layers:
            layer.compile(backend=backend, fullgraph=True)
        try:
            with torch.no_grad(), torch.compiler.config.patch(dynamic_sources=LAYER_INDEX_SOURCE):
                for b in sorted(self.sizes, reverse=True):
                    t = time.perf_counter()
                    bucket = self._buckets[b]
                    self.start.fill_(0)
                    self._step(bucket.ids, bucket.pad, bucket.cache)
                    self._sync()
                    info["ms_per_size"][b] = round((time.perf_counter() - t) * 1000, 1)
        except Exception as e:  # keep serving: an engine that cannot compile still answers, eagerly
            for layer in layers:
                layer._compiled_call_impl = None
            info.update(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=8))
            self.info.compile = info
            return info
        finally:
            torch._inductor.async_compile.shutdown_compile_workers()
        info.update(layers=len(layers), graphs=counters["stats"]["unique_graphs"] - graphs_before)
        self.info.compile = info
        return info

    def _decoder_layers(self) -> Any:
        inner = getattr(self.model, "model", None)
        layers = getattr(inner, "layers", None)
        if layers is None:
            raise RuntimeError(f"{type(self.model).__name__} has no .model.layers to compile")
        return layers

    def capture(self) -> dict[str, Any]:
        """Capture one CUDA graph per decode batch size, largest first, then one per prefill width, all in one
        memory pool (GPU only). A failed prefill capture leaves the decode graphs in place."""
        info: dict[str, Any] = {"enabled": True, "ok": True, "sizes": list(self.sizes)}
        pool = torch.cuda.graph_pool_handle()
        stream = torch.cuda.Stream(self.device)
        try:
            with torch.no_grad():
                for b in sorted(self.sizes, reverse=True):
                    self._capture(self._buckets[b], pool, stream)
            torch.cuda.synchronize(self.device)
        except Exception as e:  # keep serving without graphs rather than not at all
            for bucket in [*self._buckets.values(), *self._prefills.values()]:
                bucket.graph = bucket.out = None
            info.update(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=8))
            self.info.cuda_graphs = info
            return info
        try:
            # The eager step (prompt widths vary: no compile per width), each width captured with a one-token
            # prompt (the rest padding); the prompt's own padding is an input.
            with torch.no_grad(), torch.compiler.set_stance("force_eager"):
                for w, bucket in sorted(self._prefills.items(), reverse=True):
                    bucket.pad.fill_(w - 1)
                    self._capture(bucket, pool, stream)
            torch.cuda.synchronize(self.device)
            info["prefill_widths"] = sorted(self._prefills)
        except Exception as e:  # prefills then run eagerly
            for bucket in self._prefills.values():
                bucket.graph = bucket.out = None
            info.update(
                prefill_widths=[],
                prefill_error=f"{type(e).__name__}: {e}",
                prefill_traceback=traceback.format_exc(limit=8),
            )
        self.info.cuda_graphs = info
        return info

    def _capture(self, bucket: _Bucket, pool: Any, stream: torch.cuda.Stream) -> None:
        self.start.fill_(0)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up on the capture stream (cuBLAS handles, lazy inits)
                self._step(bucket.ids, bucket.pad, bucket.cache)
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool, stream=stream):
            out = self._step(bucket.ids, bucket.pad, bucket.cache)
        bucket.graph, bucket.out = graph, out

    # -- serving --------------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self, prompts: list[list[int]], max_tokens: int, logprobs: int | None, stop_ids: list[int]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(prompts), self.max_batch):
            out += self._generate_batch(prompts[i : i + self.max_batch], max_tokens, logprobs, set(stop_ids))
        return out

    def _generate_batch(
        self, prompts: list[list[int]], max_tokens: int, k: int | None, stop_ids: set[int]
    ) -> list[dict[str, Any]]:
        n, width = len(prompts), max(len(p) for p in prompts)
        prefill = self._prefill_graph(n, width, max_tokens)
        if prefill is not None:
            width = prefill.ids.shape[1]
        ids = torch.zeros((n, width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        pads = torch.tensor([width - len(p) for p in prompts], dtype=torch.long)
        results: list[dict[str, Any]] = [
            {"token_ids": [], "finish_reason": "length", "stop_reason": None, "logprobs": [] if k is not None else None}
            for _ in prompts
        ]
        done = [False] * n

        b = next(b for b in self.sizes if b >= n)
        self.start.fill_(0)
        if prefill is not None:
            prefill.ids.copy_(ids)
            prefill.pad.copy_(pads)
            prefill.graph.replay()
            self.prefill_replays += 1
            assert prefill.out is not None  # set with the graph it replays
            logits, nxt = prefill.out
        else:
            logits, nxt = self._prefill(ids.to(self.device), pads.to(self.device), self.kv.for_batch(b, n))
        self._record(results, done, logits[:n], nxt[:n], k, stop_ids)
        bucket = self._buckets[b]
        bucket.pad.zero_()
        bucket.pad[:n].copy_(pads)
        bucket.ids.zero_()
        for t in range(1, max_tokens):
            if all(done):
                break
            bucket.ids[:n, 0].copy_(nxt[:n])
            self.start.fill_(width + t - 1)
            logits, nxt = self._run(bucket)
            self._record(results, done, logits[:n], nxt[:n], k, stop_ids)
        return results

    def _prefill_graph(self, n: int, width: int, max_tokens: int) -> _Bucket | None:
        """The captured prefill of the smallest width holding a single prompt of ``width`` tokens, if the padded
        prompt still leaves room for ``max_tokens`` in the cache."""
        if n != 1:
            return None
        w = next((w for w in self._prefills if w >= width), None)  # the widths in ascending order
        if w is None or self._prefills[w].graph is None or w + max_tokens > self.max_len:
            return None
        return self._prefills[w]

    def _prefill(self, ids: torch.Tensor, pad: torch.Tensor, cache: Any) -> tuple[torch.Tensor, torch.Tensor]:
        # Eager, as before compiling: prompt lengths vary, and a recompile per length would stall requests.
        with torch.compiler.set_stance("force_eager"):
            return self._step(ids, pad, cache)

    def _run(self, bucket: _Bucket) -> tuple[torch.Tensor, torch.Tensor]:
        if bucket.graph is not None and bucket.out is not None:
            bucket.graph.replay()
            return bucket.out
        return self._step(bucket.ids, bucket.pad, bucket.cache)

    @staticmethod
    def _record(
        results: list[dict[str, Any]],
        done: list[bool],
        logits: torch.Tensor,
        nxt: torch.Tensor,
        k: int | None,
        stop_ids: set[int],
    ) -> None:
        tokens = nxt.tolist()
        steps: list[dict[str, Any]] | None = None
        if k is not None:
            lp = torch.log_softmax(logits.float(), dim=-1)
            chosen = lp.gather(1, nxt.view(-1, 1)).view(-1).tolist()
            top_v, top_i = lp.topk(k, dim=-1) if k else (lp[:, :0], nxt.view(-1, 1)[:, :0])
            steps = [
                {
                    "token": tok,
                    "logprob": chosen[i],
                    "top": [[t, v] for t, v in zip(top_i[i].tolist(), top_v[i].tolist(), strict=True)],
                }
                for i, tok in enumerate(tokens)
            ]
        for i, tok in enumerate(tokens):
            if done[i]:
                continue
            res = results[i]
            res["token_ids"].append(tok)
            if steps is not None:
                res["logprobs"].append(steps[i])
            if tok in stop_ids:
                res["finish_reason"], res["stop_reason"] = "stop", tok
                done[i] = True

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
