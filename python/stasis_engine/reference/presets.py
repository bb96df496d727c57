"""The model configurations ``make-model`` writes: Llama-3.2-3B's shape, and a tiny one for CPU tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tokenizer import BOS_ID, EOS_ID


@dataclass(frozen=True)
class Preset:
    """A Hugging Face ``config.json`` plus how to draw the random weights (``normal(0, init_std)``)."""

    config: dict[str, Any]
    init_std: float


def _llama(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "mlp_bias": False,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "use_cache": True,
        # Our byte-level tokenizer's specials, not Llama-3's (128000/128001): see tokenizer.py.
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
    }
    base.update(fields)
    return base


PRESETS: dict[str, Preset] = {
    # meta-llama/Llama-3.2-3B's config.json, field for field (bf16, tied embeddings, llama3 RoPE scaling).
    "3b": Preset(
        _llama(
            hidden_size=3072,
            intermediate_size=8192,
            num_hidden_layers=28,
            num_attention_heads=24,
            num_key_value_heads=8,
            head_dim=128,
            vocab_size=128256,
            max_position_embeddings=131072,
            initializer_range=0.02,
            rope_theta=500000.0,
            rope_scaling={
                "factor": 32.0,
                "high_freq_factor": 4.0,
                "low_freq_factor": 1.0,
                "original_max_position_embeddings": 8192,
                "rope_type": "llama3",
            },
            tie_word_embeddings=True,
            torch_dtype="bfloat16",
        ),
        init_std=0.02,
    ),
    # Small enough for CI on two cores; float32 because bf16 matmuls on CPU are slow.
    # A larger init_std than 0.02: at hidden size 64 the layers must outweigh the embedding, or greedy decoding
    # just repeats the last prompt token and a refill with wrong weights could go unnoticed.
    "tiny": Preset(
        _llama(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            vocab_size=512,
            max_position_embeddings=512,
            initializer_range=0.125,
            rope_theta=10000.0,
            tie_word_embeddings=True,
            torch_dtype="float32",
        ),
        init_std=0.125,
    ),
}
