"""make-model and the model loader: the 3B configuration (checked on the meta device) and a bf16 round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from stasis_engine.reference import presets
from stasis_engine.reference.engine import Engine
from stasis_engine.reference.kv_cache import KVShape
from stasis_engine.reference.make_model import make_model
from stasis_engine.reference.model import build_meta_model, load_config, plan_weights
from stasis_engine.reference.options import ServeOptions
from stasis_engine.reference.phases import Phases


def test_3b_preset_is_llama_3_2_3b_in_bf16(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(presets.PRESETS["3b"].config))
    config = load_config(str(tmp_path))
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (28, 3072, 8192)
    assert (config.num_attention_heads, config.num_key_value_heads, config.vocab_size) == (24, 8, 128256)
    assert config.rope_parameters["rope_type"] == "llama3" and config.rope_parameters["rope_theta"] == 500000.0
    model = build_meta_model(config)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    slots, _ = plan_weights(model)
    assert {s.dtype for s in slots} == {torch.bfloat16} and len(slots) == 254
    assert sum(s.nbytes for s in slots) == 3_212_749_824 * 2  # 3.21 B parameters, 6.4 GB
    assert KVShape(config, 8, 4096).arena_bytes(torch.bfloat16) == 8 * 28 * 2 * 8 * 4096 * 128 * 2


def test_make_model_is_deterministic_and_not_zero(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    make_model("tiny", a, seed=3)
    make_model("tiny", b, seed=3, shard_bytes=100_000)  # other sharding, same tensors
    assert make_model("tiny", a, seed=3)["skipped"]
    assert len(list(b.glob("*.safetensors"))) > 1 and (b / "model.safetensors.index.json").exists()
    with safe_open(str(a / "model.safetensors"), "pt") as fa:
        index = json.loads((b / "model.safetensors.index.json").read_text())["weight_map"]
        for name in fa.keys():  # noqa: SIM118
            with safe_open(str(b / index[name]), "pt") as fb:
                assert torch.equal(fa.get_tensor(name), fb.get_tensor(name)), name
        emb = fa.get_tensor("model.embed_tokens.weight")
        assert 0.1 < emb.std().item() < 0.15 and emb.dtype == torch.float32
    assert json.loads((a / "config.json").read_text())["stasis"]["seed"] == 3


def test_bf16_model_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = presets.PRESETS["tiny"]
    monkeypatch.setitem(
        presets.PRESETS, "tiny-bf16", presets.Preset({**tiny.config, "torch_dtype": "bfloat16"}, tiny.init_std)
    )
    make_model("tiny-bf16", tmp_path)
    e = Engine(
        ServeOptions(model_dir=str(tmp_path), port=0, device="cpu", cuda_graph_sizes=(1,), max_model_len=64),
        Phases(printer=lambda tag, rec: None),
    )
    e.start()
    assert e.views["model.embed_tokens.weight"].dtype == torch.bfloat16
    before = e.generate([[256, 1, 2, 3]], 8, None, [])
    e.sleep(2)
    e.wake(None)
    e.rpc.call("reload_weights", [], {})
    assert e.generate([[256, 1, 2, 3]], 8, None, []) == before


def test_kv_cache_lays_each_batch_size_out_contiguously(tmp_path: Path) -> None:
    """Every captured batch size gets a contiguous [layers, b, ...] layout at the arena's start (the compiled
    write stays in place only into a contiguous input); a prefill of fewer prompts sees the first rows of it."""
    import types

    from stasis_engine.reference.kv_cache import KVCache

    config = types.SimpleNamespace(
        num_hidden_layers=3, num_key_value_heads=2, head_dim=4, hidden_size=8, num_attention_heads=2
    )
    shape = KVShape(config, 4, 64)
    kv = KVCache(
        torch.zeros(shape.arena_bytes(torch.float32), dtype=torch.uint8),
        shape,
        torch.float32,
        torch.zeros((), dtype=torch.long),
    )
    for b in (1, 2, 4):
        cache = kv.for_batch(b)
        assert cache.stacked_keys.shape == (3, b, 2, 64, 4) and cache.stacked_keys.is_contiguous()
        assert cache.stacked_keys.data_ptr() == kv.for_batch(4).stacked_keys.data_ptr()
    part = kv.for_batch(4, 3)
    assert part.stacked_values.shape == (3, 3, 2, 64, 4)
    assert part.stacked_values.data_ptr() == kv.for_batch(4).stacked_values.data_ptr()
    k = torch.randn(3, 2, 1, 4)
    kv.start.fill_(5)
    keys, _ = part.update(k, k, 1)
    assert torch.equal(kv.for_batch(4).stacked_keys[1, :3, :, 5], k[:, :, 0])
    assert keys.shape == (3, 2, 64, 4)
    with pytest.raises(ValueError):
        kv.for_batch(2, 3)
