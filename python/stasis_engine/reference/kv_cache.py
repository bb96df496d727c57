"""The KV cache: one arena, per layer K and V of ``[max_batch, kv_heads, max_len, head_dim]``, fixed addresses.

``ArenaKVLayer`` is a transformers cache layer over a batch-prefix view of those tensors. It writes the new
keys/values at slots ``start + arange(q)``, where ``start`` is one 0-d device tensor shared by all layers and
advanced by the runner between steps (so a captured CUDA graph reads the current position from memory), and
returns the whole ``max_len`` window: the attention mask built by the runner decides what is visible.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from .arena import align_up


class ArenaKVLayer(CacheLayerMixin):
    is_compileable = True
    is_sliding = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, start: torch.Tensor) -> None:
        super().__init__()
        self.keys, self.values, self.start = keys, values, start
        self._kv = (keys, values)  # typed, never None (the mixin's keys/values are Optional)
        self.max_cache_len = keys.shape[2]
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        raise RuntimeError("ArenaKVLayer is allocated up front")

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self._kv
        slots = torch.arange(key_states.shape[2], device=key_states.device) + self.start
        keys.index_copy_(2, slots, key_states)
        values.index_copy_(2, slots, value_states)
        return keys, values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.max_cache_len, 0

    def get_seq_length(self) -> int:
        return 0  # positions are passed explicitly; transformers never needs to infer them

    def get_max_length(self) -> int:
        return self.max_cache_len


class KVCache:
    """Per-layer K/V views into ``arena`` (uint8), and ``Cache`` objects over their first ``b`` rows."""

    def __init__(self, arena: torch.Tensor, shapes: KVShape, dtype: torch.dtype, start: torch.Tensor) -> None:
        self.shape = shapes
        self.start = start
        per = shapes.tensor_bytes(dtype)
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        dims = (shapes.max_batch, shapes.kv_heads, shapes.max_len, shapes.head_dim)
        for i in range(shapes.layers):
            k_off, v_off = 2 * i * per, (2 * i + 1) * per
            k = arena[k_off:k_off + per].view(dtype)[: _numel(dims)].view(dims)
            v = arena[v_off:v_off + per].view(dtype)[: _numel(dims)].view(dims)
            self.layers.append((k, v))
        self._caches: dict[int, Cache] = {}

    def for_batch(self, b: int) -> Cache:
        """A transformers ``Cache`` over rows ``[:b]`` (views: every batch size shares the same memory)."""
        if b not in self._caches:
            self._caches[b] = Cache(layers=[ArenaKVLayer(k[:b], v[:b], self.start) for k, v in self.layers])
        return self._caches[b]

    def zero_(self) -> None:
        # Unwritten slots are masked out, but 0 * NaN is NaN: fresh memory must hold finite values.
        for k, v in self.layers:
            k.zero_()
            v.zero_()


class KVShape:
    def __init__(self, config: Any, max_batch: int, max_len: int) -> None:
        self.layers = config.num_hidden_layers
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.max_batch = max_batch
        # Slots beyond max_model_len are never visible; the round-up keeps the attention mask's last dimension
        # aligned, which the fused SDPA kernels want.
        self.max_len = align_up(max_len, 64)

    def tensor_bytes(self, dtype: torch.dtype) -> int:
        n = self.max_batch * self.kv_heads * self.max_len * self.head_dim
        return align_up(n * torch.empty((), dtype=dtype).element_size())

    def arena_bytes(self, dtype: torch.dtype) -> int:
        return 2 * self.layers * self.tensor_bytes(dtype)


def _numel(dims: tuple[int, ...]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n
