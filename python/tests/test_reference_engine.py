"""The reference engine in-process on the CPU (tiny model): generation, sleep levels, wake, refill."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.reference.arena import HostArena
from stasis_engine.reference.engine import Engine
from stasis_engine.reference.make_model import make_model
from stasis_engine.reference.memory import host_rss_bytes
from stasis_engine.reference.options import ServeOptions
from stasis_engine.reference.phases import Phases
from stasis_engine.reference.tokenizer import BOS_ID

PROMPTS = [[BOS_ID, *b"Hello, world"], [BOS_ID, *b"The quick brown fox jumps"], [BOS_ID, 7]]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    model_dir = tmp_path_factory.mktemp("tiny")
    make_model("tiny", model_dir)
    e = Engine(
        ServeOptions(model_dir=str(model_dir), port=0, device="cpu", cuda_graph_sizes=(1, 2, 4), max_model_len=128),
        Phases(printer=lambda tag, rec: None),
    )
    e.start()
    return e


def greedy(e: Engine, prompts: list[list[int]] = PROMPTS, n: int = 12) -> list[list[int]]:
    return [r["token_ids"] for r in e.generate(prompts, n, None, [])]


def naive_greedy(e: Engine, prompt: list[int], n: int) -> list[int]:
    """The plain transformers forward over the whole sequence each step: no cache, no mask of ours."""
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = e.model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1]
            seq.append(int(logits.argmax()))
    return seq[len(prompt) :]


def test_startup_runs_the_phases_in_order(engine: Engine) -> None:
    names = [r["phase"] for r in engine.phases.records]
    assert names == ["init_device", "build_model", "allocate_weights", "load_weights", "allocate_kv_cache", "warmup"]
    load = engine.phases.records[3]
    assert load["bytes"] == sum(s.nbytes for s in engine.slots) > 0


def test_cached_batched_decoding_matches_plain_transformers(engine: Engine) -> None:
    batched = greedy(engine)
    assert batched == [naive_greedy(engine, p, 12) for p in PROMPTS]
    assert len({tuple(t) for t in batched}) == 3  # the model is not degenerate: different prompts, answers
    assert greedy(engine) == batched


def test_more_prompts_than_the_largest_batch_run_in_chunks(engine: Engine) -> None:
    assert greedy(engine, PROMPTS * 2) == greedy(engine) * 2  # 6 prompts, batches of at most 4


def test_logprobs_are_greedy(engine: Engine) -> None:
    (res,) = engine.generate(PROMPTS[:1], 4, 3, [])
    for step in res["logprobs"]:
        assert step["top"][0][0] == step["token"] and step["logprob"] == pytest.approx(step["top"][0][1])
        assert len(step["top"]) == 3 and step["logprob"] <= 0


def test_stop_token_ends_the_row(engine: Engine) -> None:
    first = greedy(engine, PROMPTS[:1], 6)[0]
    (res,) = engine.generate(PROMPTS[:1], 6, None, [first[2]])
    assert res["token_ids"] == first[:3] and res["finish_reason"] == "stop"


def test_sleep_level_1_keeps_a_host_copy_and_wakes_identical(engine: Engine) -> None:
    before = greedy(engine)
    out = engine.sleep(1)
    assert out["level"] == 1 and out["backup_bytes"] == engine.weights.size and engine.is_sleeping()
    with pytest.raises(StasisEngineError) as e:
        greedy(engine)
    assert e.value.code == "engine_asleep"
    engine.wake(["weights"])
    assert engine.is_sleeping() and engine.weights_state == "ready"  # the KV cache is still asleep
    engine.wake(["kv_cache"])
    assert not engine.is_sleeping() and greedy(engine) == before


def test_sleep_level_2_discards_weights_until_refilled(engine: Engine, tmp_path: Path) -> None:
    before = greedy(engine)
    dump = engine.rpc.call("stasis_dump_weights", [str(tmp_path / "w.stasisw")], {})
    assert dump["bytes"] == sum(s.nbytes for s in engine.slots)
    out = engine.sleep(2)
    assert out["backup_bytes"] == 0
    trim = out["host_trim"]  # the state a snapshot is taken in: freed heap given back, before and after measured
    assert trim["ms"] >= 0 and 0 < trim["private_dirty_after_bytes"] <= trim["private_dirty_before_bytes"]
    again = engine.rpc.call("stasis_trim_host_memory", [], {})
    assert again["ok"] and again["rank"] == 0 and again["private_dirty_after_bytes"] > 0
    engine.wake(["weights"])
    assert engine.weights_state == "stale"
    assert not engine.views["model.norm.weight"].any()  # the pages really went back: they read as zeros
    engine.wake(["kv_cache"])
    with pytest.raises(StasisEngineError) as e:
        greedy(engine)
    assert e.value.code == "weights_not_loaded"
    stats = engine.rpc.call("stasis_load_weights", [str(tmp_path / "w.stasisw")], {"verify": "true"})
    assert stats["bytes"] == dump["bytes"] and engine.weights_state == "ready"
    assert greedy(engine) == before


def test_sleep_level_2_slow_path_reload_from_safetensors(engine: Engine) -> None:
    before = greedy(engine)
    engine.sleep(2)
    engine.wake(None)
    assert engine.rpc.call("reload_weights", [], {})["bytes"] > 0
    assert greedy(engine) == before


def test_refill_refuses_a_foreign_file_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    from stasis_engine.weights import dump

    dump({"something.else": torch.zeros(4)}, tmp_path / "foreign.stasisw")
    before = engine.views["model.norm.weight"].clone()
    with pytest.raises(StasisEngineError) as e:
        engine.rpc.call("stasis_load_weights", [str(tmp_path / "foreign.stasisw")], {})
    assert e.value.code.startswith("weights_") and engine.weights_state == "ready"
    assert torch.equal(engine.views["model.norm.weight"], before)


def test_refill_while_asleep_and_bad_rpc_calls_are_refused(engine: Engine) -> None:
    engine.sleep(2)
    try:
        with pytest.raises(StasisEngineError) as e:
            engine.rpc.call("reload_weights", [], {})
        assert e.value.code == "engine_asleep"
        with pytest.raises(StasisEngineError) as e:
            engine.rpc.call("no_such_method", [], {})
        assert e.value.code == "rpc_unknown_method"
        with pytest.raises(StasisEngineError) as e:
            engine.rpc.call("stasis_load_weights", [], {})
        assert e.value.code == "rpc_bad_args"
        with pytest.raises(StasisEngineError) as e:
            engine.wake(["everything"])
        assert e.value.code == "bad_request"
    finally:
        engine.wake(None)
        engine.rpc.call("reload_weights", [], {})


def test_host_arena_release_gives_the_pages_back() -> None:
    arena = HostArena("t", 96 << 20)
    arena.tensor().fill_(7)
    touched = host_rss_bytes()
    arena.release()
    assert touched - host_rss_bytes() > 64 << 20
    arena.restore()
    assert arena.tensor().data_ptr() == arena.address and not arena.tensor()[:4096].any()


def _can_build_cpu_kernels() -> bool:
    import shutil
    import sysconfig

    include = sysconfig.get_paths().get("include") or ""
    return shutil.which("g++") is not None and Path(include, "Python.h").exists()


@pytest.mark.parametrize(
    "backend",
    [
        "eager",
        pytest.param(
            "inductor",
            marks=pytest.mark.skipif(
                not _can_build_cpu_kernels(), reason="inductor on the CPU needs g++ and Python headers"
            ),
        ),
    ],
)
def test_compile_compiles_one_decoder_layer_for_all_layers(tmp_path: Path, backend: str) -> None:
    """Compiled decode answers as eager does, with at most three graphs however many layers the model has: batch 4
    (static), batch dynamic, batch 1 (two when an earlier compile in this process already saw the batch vary).
    Were the layer index a constant, layer 1 would double them."""
    model_dir = tmp_path / "tiny"
    make_model("tiny", model_dir)
    answers = []
    for compile_ in (False, True):
        e = Engine(
            ServeOptions(
                model_dir=str(model_dir),
                port=0,
                device="cpu",
                cuda_graph_sizes=(1, 2, 4),
                max_model_len=64,
                compile=compile_,
                compile_backend=backend,
            ),
            Phases(printer=lambda tag, rec: None),
        )
        e.start()
        answers.append(greedy(e, n=6) + greedy(e, PROMPTS[:1], 6))
    info = e.runner.info.compile
    assert info["ok"], info.get("error")
    assert info["backend"] == backend and info["layers"] == 2 and 1 <= info["graphs"] <= 3
    assert [r["phase"] for r in e.phases.records][5] == "torch_compile"
    assert answers[0] == answers[1]


def test_single_prompt_prefill_padded_to_a_graph_width_answers_the_same(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prefill-graph path on the CPU: a stand-in "graph" runs the eager step over the width's static inputs,
    so what is checked is the padding (a prompt left-padded to the graph's width answers as unpadded), the choice
    of width, and when the path is not taken (batches, too wide, no room left for the answer after padding)."""
    r = engine.runner
    assert sorted(r._prefills) == [16, 32, 64, 128]

    class Replay:
        def __init__(self, bucket: object) -> None:
            self.bucket = bucket

        def replay(self) -> None:
            b = self.bucket
            b.out = r._prefill(b.ids, b.pad, b.cache)  # type: ignore[attr-defined]

    for bucket in r._prefills.values():
        monkeypatch.setattr(bucket, "graph", Replay(bucket))
    before = r.prefill_replays
    for p in PROMPTS:
        assert greedy(engine, [p]) == [naive_greedy(engine, p, 12)]
    assert r.prefill_replays - before == len(PROMPTS)
    assert r._prefill_graph(1, 13, 12) is r._prefills[16] and r._prefill_graph(1, 17, 12) is r._prefills[32]
    assert r._prefill_graph(2, 13, 12) is None  # batches prefill eagerly
    assert r._prefill_graph(1, 100, 40) is None  # padded to 128, 40 more tokens would not fit in the cache
    before = r.prefill_replays
    wide = [BOS_ID, *range(1, 100)]
    assert greedy(engine, [wide], 20) == [naive_greedy(engine, wide, 20)]
    assert greedy(engine, PROMPTS) == [naive_greedy(engine, p, 12) for p in PROMPTS]
    assert r.prefill_replays == before
