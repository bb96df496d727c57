"""Grouped-query attention without copying the KV cache: the engine's attention function for transformers.

transformers' own ``sdpa`` attention, given an attention mask (the runner always passes one), repeats every KV
head for each query head that shares it (``repeat_kv``) before calling SDPA: at batch 8 and 4096 slots that is
two 201 MB copies per layer per step. Inside a captured CUDA graph those copies live in the graph's memory pool,
which stays on the GPU, so the CUDA checkpoint copies it into every snapshot and every restore copies it back.

Here the query heads that share a KV head are laid side by side as extra query rows instead
(``[batch, kv_heads, groups * q, head_dim]``), with the mask repeated to match, so SDPA reads the cache in place.
Each (head, query) row sees the same keys, values and mask as before; only the batching of the kernel changes.
vLLM likewise brings its own attention backends to the model; everything else stays transformers' code.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "stasis_gqa"


def gqa_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    b, heads, q, d = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    if groups == 1 or attention_mask is None:  # nothing to group, or a causal-by-flag call: transformers' path
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    # Query head h uses KV head h // groups (repeat_kv's order), so the groups are contiguous in ``heads``.
    grouped = query.reshape(b, kv_heads, groups * q, d)
    t = attention_mask.shape[-1]
    if attention_mask.shape[1] == 1:
        mask = attention_mask[:, :, None].expand(b, 1, groups, q, t).reshape(b, 1, groups * q, t)
    else:
        mask = attention_mask.expand(b, heads, q, t).reshape(b, kv_heads, groups * q, t)
    out = torch.nn.functional.scaled_dot_product_attention(
        grouped, key, value, attn_mask=mask, dropout_p=dropout, scale=scaling
    )
    return out.reshape(b, heads, q, d).transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, gqa_attention_forward)
