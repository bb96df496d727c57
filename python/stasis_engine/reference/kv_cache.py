"""The KV cache: one arena for all layers' keys, then one for their values, at fixed addresses.

A batch of size ``b`` (a captured size) lays its cache out contiguously at the start of each arena, as
``[layers, b, kv_heads, max_len, head_dim]``: different batch sizes overlay the same memory in different layouts,
which is fine because a generation starts from an empty cache and keeps one batch size throughout. Contiguous
matters: the compiled decode step writes into the cache in place only when its input is contiguous; a write into
a strided view of a graph input of dynamic size is compiled as a full copy of the input (kept in the CUDA graphs'
memory pool and so in every snapshot: "Less GPU state" in docs/benchmarks.md).

``ArenaCache`` is the transformers ``Cache`` over such a layout. It writes the new keys/values at slots
``start + arange(q)``, where ``start`` is one 0-d device tensor advanced by the runner between steps (so a
captured CUDA graph reads the current position from memory), and returns the layer's whole ``max_len`` window:
the attention mask built by the runner decides what is visible.

The layers are stacked, not a list of per-layer tensors, so that the layer index is an ordinary tensor index:
``torch.compile`` of one decoder layer then serves all of them (the index becomes a graph input instead of a
constant baked into 28 different graphs; see ``Runner.compile``).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from .arena import align_up


class ArenaKVLayer(CacheLayerMixin):
    """One layer's view, for what transformers asks a cache layer (mask sizes, lengths). Writes go through
    ``ArenaCache.update``, into the stack."""

    is_compileable = True
    is_sliding = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.keys, self.values = keys, values
        self.max_cache_len = keys.shape[2]
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        raise RuntimeError("ArenaKVLayer is allocated up front")

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise RuntimeError("the KV cache is written through ArenaCache.update")

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.max_cache_len, 0

    def get_seq_length(self) -> int:
        return 0  # positions are passed explicitly; transformers never needs to infer them

    def get_max_length(self) -> int:
        return self.max_cache_len


class ArenaCache(Cache):
    """A ``Cache`` over stacked ``keys``/``values`` (``[layers, rows, ...]``): ``update`` indexes the stack."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, start: torch.Tensor) -> None:
        super().__init__(layers=[ArenaKVLayer(keys[i], values[i]) for i in range(keys.shape[0])])
        self.stacked_keys, self.stacked_values, self.start = keys, values, start

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Written through the stack itself (index_put_), not through a per-layer view of it: a write through a
        # view makes the compiler prove the views of different layers apart, which specializes layer 0.
        slots = torch.arange(key_states.shape[2], device=key_states.device) + self.start
        layer = torch.full((1,), layer_idx, dtype=torch.long, device=key_states.device)
        self.stacked_keys[layer, :, :, slots] = key_states.permute(2, 0, 1, 3)  # [q, b, heads, dim]
        self.stacked_values[layer, :, :, slots] = value_states.permute(2, 0, 1, 3)
        return self.stacked_keys[layer_idx], self.stacked_values[layer_idx]


class KVCache:
    """The two arenas (views into ``arena``, uint8) and ``ArenaCache`` objects over their per-size layouts."""

    def __init__(self, arena: torch.Tensor, shapes: KVShape, dtype: torch.dtype, start: torch.Tensor) -> None:
        self.shape = shapes
        self.start = start
        per = shapes.tensor_bytes(dtype)
        self._keys = arena[:per].view(dtype)
        self._values = arena[per : 2 * per].view(dtype)
        self._caches: dict[tuple[int, int], ArenaCache] = {}

    def for_batch(self, b: int, rows: int | None = None) -> ArenaCache:
        """The ``Cache`` of batch size ``b`` (contiguous), or of its first ``rows`` rows (a prefill of fewer prompts
        than the decode batch it continues in)."""
        rows = b if rows is None else rows
        if not 0 < rows <= b <= self.shape.max_batch:
            raise ValueError(f"cache of {rows} rows in a batch of {b} (max batch {self.shape.max_batch})")
        if (b, rows) not in self._caches:
            s = self.shape
            dims = (s.layers, b, s.kv_heads, s.max_len, s.head_dim)
            keys = self._keys[: _numel(dims)].view(dims)[:, :rows]
            values = self._values[: _numel(dims)].view(dims)[:, :rows]
            self._caches[(b, rows)] = ArenaCache(keys, values, self.start)
        return self._caches[(b, rows)]

    def zero_(self) -> None:
        # Unwritten slots are masked out, but 0 * NaN is NaN: fresh memory must hold finite values.
        self._keys.zero_()
        self._values.zero_()


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
        """Bytes of one stacked tensor (all layers' keys, or all layers' values), aligned."""
        n = self.layers * self.max_batch * self.kv_heads * self.max_len * self.head_dim
        return align_up(n * torch.empty((), dtype=dtype).element_size())

    def arena_bytes(self, dtype: torch.dtype) -> int:
        return 2 * self.tensor_bytes(dtype)


def _numel(dims: tuple[int, ...]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n
