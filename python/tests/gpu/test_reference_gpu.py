"""The reference engine on a real GPU: CUDA VMM arenas, torch.compile + CUDA graphs, sleep 1/2, wake, refill.

Skipped without CUDA. Run on the GPU machine:  cd python && python3 -m pytest tests/gpu/test_reference_gpu.py -v
Uses the tiny model (float32) so it is quick; bench/reference_startup.py does the same with the 3B model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.reference.engine import Engine
from stasis_engine.reference.make_model import make_model
from stasis_engine.reference.options import ServeOptions
from stasis_engine.reference.phases import Phases
from stasis_engine.reference.tokenizer import BOS_ID

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

PROMPTS = [[BOS_ID, *b"Hello, world"], [BOS_ID, *b"The quick brown fox jumps"], [BOS_ID, 7]]


def test_arena_survives_unmap_and_remap_under_a_cuda_graph() -> None:
    from stasis_engine.reference.cuda_arena import CudaArena

    torch.zeros(1, device="cuda")
    arena = CudaArena("t", 3 << 20, torch.cuda.current_device())
    x = arena.tensor()[: 1 << 20].view(torch.float32)
    x.fill_(2.0)
    out = torch.empty_like(x)
    graph = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        torch.mul(x, 3.0, out=out)
    torch.cuda.synchronize()
    with torch.cuda.graph(graph, stream=s):
        torch.mul(x, 3.0, out=out)
    address = arena.address
    used = torch.cuda.mem_get_info()[1] - torch.cuda.mem_get_info()[0]
    arena.release()
    assert used - (torch.cuda.mem_get_info()[1] - torch.cuda.mem_get_info()[0]) >= arena.size
    arena.restore()
    assert arena.address == address == arena.tensor().data_ptr()
    x.fill_(5.0)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.all(out == 15.0)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    model_dir = tmp_path_factory.mktemp("tiny")
    make_model("tiny", model_dir, device="cpu")
    e = Engine(ServeOptions(model_dir=str(model_dir), port=0, device="cuda", cuda_graph_sizes=(1, 2, 4)), Phases())
    e.start()
    return e


def greedy(e: Engine, n: int = 12) -> list[list[int]]:
    return [r["token_ids"] for r in e.generate(PROMPTS, n, None, [])]


def naive_greedy(e: Engine, prompt: list[int], n: int) -> list[int]:
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = e.model(input_ids=torch.tensor([seq], device="cuda"), use_cache=False).logits[0, -1]
            seq.append(int(logits.argmax()))
    return seq[len(prompt) :]


def test_startup_compiles_and_captures(engine: Engine) -> None:
    names = [r["phase"] for r in engine.phases.records]
    assert {"torch_compile", "cuda_graph_capture"} <= set(names)
    assert engine.runner.info.compile["ok"], engine.runner.info.compile
    assert engine.runner.info.cuda_graphs["ok"], engine.runner.info.cuda_graphs
    assert all(b.graph is not None for b in engine.runner._buckets.values())


def test_graph_decoding_matches_plain_transformers(engine: Engine) -> None:
    assert greedy(engine) == [naive_greedy(engine, p, 12) for p in PROMPTS]


def test_single_prompts_replay_prefill_graphs_and_match_plain_transformers(engine: Engine) -> None:
    r = engine.runner
    assert r.info.cuda_graphs["prefill_widths"] == [16, 32, 64, 128], r.info.cuda_graphs
    before = r.prefill_replays
    for p in PROMPTS:
        assert [t["token_ids"] for t in engine.generate([p], 12, None, [])] == [naive_greedy(engine, p, 12)]
    assert r.prefill_replays - before == len(PROMPTS)


def test_sleep_1_releases_gpu_memory_and_wakes_identical(engine: Engine) -> None:
    before = greedy(engine)
    used = engine.status()["memory"]["device_used_bytes"]
    out = engine.sleep(1)
    assert used - out["memory"]["device_used_bytes"] >= engine.weights.size + engine.kv_arena.size
    engine.wake(None)
    assert greedy(engine) == before


def test_sleep_2_wake_refill_identical(engine: Engine, tmp_path: Path) -> None:
    before = greedy(engine)
    path = str(tmp_path / "w.stasisw")
    engine.rpc.call("stasis_dump_weights", [path], {})
    engine.sleep(2)
    engine.wake(["weights"])
    with pytest.raises(StasisEngineError):
        greedy(engine)
    engine.rpc.call("stasis_load_weights", [path], {})
    engine.wake(["kv_cache"])
    assert greedy(engine) == before
    engine.sleep(2)
    engine.wake(None)
    engine.rpc.call("reload_weights", [], {})
    assert greedy(engine) == before


def test_sleep_2_then_adopt_staged_weights_identical(engine: Engine, tmp_path: Path) -> None:
    """The restore's staged weights: a stager process (no torch) fills fresh GPU memory from the dump and hands
    it over; the sleeping engine maps it at its arena's addresses; its CUDA graphs answer as before."""
    import json
    import os
    import subprocess

    before = greedy(engine)
    path = str(tmp_path / "w.stasisw")
    engine.rpc.call("stasis_dump_weights", [path], {})
    layout = engine.rpc.call("stasis_weights_layout", [], {})
    stage = layout["stage"]
    assert stage and stage["python"] and stage["arena_size"] == engine.weights.size
    engine.sleep(2)
    uuid = str(torch.cuda.get_device_properties(engine.device).uuid)  # the stager takes it with or without "GPU-"
    sock = str(tmp_path / "stage.sock")
    job = {
        "file": path,
        "gpu": uuid,
        "socket": sock,
        "arena_size": stage["arena_size"],
        "tensors": layout["tensors"],
        "reserve_bytes": 0,
    }
    stager = subprocess.Popen(
        [stage["python"], "-m", "stasis_engine.weights.stage"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": stage["path"]},
    )
    assert stager.stdin and stager.stdout
    stager.stdin.write(json.dumps(job))
    stager.stdin.close()
    ready = json.loads(stager.stdout.readline())
    assert ready["event"] == "ready", ready
    out = engine.rpc.call("stasis_adopt_weights", [sock], {})
    assert out["ok"] and out["bytes"] == engine.weights.size
    assert json.loads(stager.stdout.readline())["event"] == "handed-off"
    assert stager.wait(30) == 0
    engine.wake(["kv_cache"])
    assert greedy(engine) == before
    # The adopted memory sleeps and wakes like any: released at sleep, fresh at wake, refilled in place.
    engine.sleep(2)
    engine.wake(None)
    engine.rpc.call("stasis_load_weights", [path], {})
    assert greedy(engine) == before


def test_sleep_2_then_adopt_from_the_keeper_twice_identical(engine: Engine, tmp_path: Path) -> None:
    """``stage --keep`` (stasis serve --pin-weights): the first job is filled from the file and the file's pinned
    image made after its hand-off; the second only copies that image to fresh GPU memory; both adopted, both
    answer as before."""
    import json
    import os
    import subprocess

    before = greedy(engine)
    path = str(tmp_path / "w.stasisw")
    engine.rpc.call("stasis_dump_weights", [path], {})
    layout = engine.rpc.call("stasis_weights_layout", [], {})
    stage = layout["stage"]
    keeper = subprocess.Popen(
        [stage["python"], "-m", "stasis_engine.weights.stage", "--keep"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": stage["path"]},
    )
    assert keeper.stdin and keeper.stdout
    try:
        for n in (1, 2):
            engine.sleep(2)
            sock = str(tmp_path / f"keep{n}.sock")
            job = {
                "id": f"j{n}",
                "file": path,
                "gpu": "0",
                "socket": sock,
                "arena_size": stage["arena_size"],
                "tensors": layout["tensors"],
            }
            keeper.stdin.write(json.dumps(job) + "\n")
            keeper.stdin.flush()
            ready = json.loads(keeper.stdout.readline())
            assert ready["event"] == "ready" and ready["id"] == f"j{n}", ready
            assert (ready["load"]["method"] == "pinned-image") is (n == 2), ready
            engine.rpc.call("stasis_adopt_weights", [sock], {})
            assert json.loads(keeper.stdout.readline())["event"] == "handed-off"
            if n == 1:
                pinned = json.loads(keeper.stdout.readline())
                assert pinned["event"] == "pinned" and pinned["bytes"] == stage["arena_size"], pinned
            engine.wake(["kv_cache"])
            assert greedy(engine) == before
    finally:
        keeper.stdin.close()
        assert keeper.wait(30) == 0


def test_no_child_process_lingers(engine: Engine) -> None:
    assert engine.status()["memory"]["children"] == []
