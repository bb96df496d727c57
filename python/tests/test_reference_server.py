"""The reference engine as it runs: both processes started for real on a free port, driven over HTTP (CPU)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stasis_engine.reference.client import Client, ServerProcess
from stasis_engine.reference.make_model import make_model

PROMPT = "Snapshots restore servers"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("tiny")
    make_model("tiny", d)
    return str(d)


@pytest.fixture(scope="module")
def server(model_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("logs") / "server.log"
    s = ServerProcess.start(
        model_dir, log_path=str(log), device="cpu", args=["--max-model-len", "128", "--served-model-name", "tiny"]
    )
    try:
        s.wait_ready(120)
        yield s
    finally:
        s.stop()


@pytest.fixture
def api(server: ServerProcess) -> Client:
    return server.client


def answer(api: Client, prompt: object = PROMPT, n: int = 10) -> list[int]:
    return api.complete(prompt, max_tokens=n)["choices"][0]["token_ids"]


def test_ready_with_a_startup_profile(api: Client) -> None:
    profile = api.ok("GET", "/stasis/startup")
    names = [p["phase"] for p in profile["phases"]]
    assert names[:3] == ["frontend_init", "spawn_engine", "import"] and names[-1] == "http_listen"
    assert {"load_weights", "allocate_kv_cache", "warmup"} <= set(names)
    assert profile["total_ms"] >= sum(p["ms"] for p in profile["phases"]) * 0.9
    assert api.ok("GET", "/v1/models")["data"][0]["id"] == "tiny"


def test_no_thread_pool_or_child_process_lingers(api: Client) -> None:
    # What CRIU will have to dump: the front end is one thread, the engine has no children.
    profile = api.ok("GET", "/stasis/startup")
    assert os.listdir(f"/proc/{profile['frontend_pid']}/task") == [str(profile["frontend_pid"])]
    assert api.rpc("stasis_status")["memory"]["children"] == []


def test_completions_are_deterministic_text_or_ids(api: Client) -> None:
    out = api.complete(PROMPT, max_tokens=10, logprobs=2)
    choice = out["choices"][0]
    assert len(choice["token_ids"]) == 10 and choice["finish_reason"] in ("length", "stop")
    assert out["usage"]["completion_tokens"] == 10 and len(choice["logprobs"]["tokens"]) == 10
    assert answer(api) == choice["token_ids"]
    assert answer(api, choice["prompt_token_ids"]) == choice["token_ids"]  # ids or text: the same prompt
    both = api.complete([PROMPT, "x"], max_tokens=10)["choices"]
    assert [c["token_ids"] for c in both] == [choice["token_ids"], answer(api, "x")]


def test_concurrent_requests_queue_and_stay_deterministic(api: Client) -> None:
    expected = answer(api)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: answer(api), range(6)))
    assert got == [expected] * 6


def test_sleep_1_and_wake_answers_identically(api: Client) -> None:
    before = answer(api)
    assert api.sleep(1)["level"] == 1
    assert api.ok("GET", "/is_sleeping") == {"is_sleeping": True}
    assert api.request("GET", "/health")[0] == 200
    status, body = api.request("POST", "/v1/completions", {"prompt": PROMPT})
    assert status == 503 and body["error"]["stasis_code"] == "engine_asleep"
    api.wake()
    assert api.ok("GET", "/is_sleeping") == {"is_sleeping": False}
    assert answer(api) == before


def test_sleep_2_wake_refill_answers_identically(api: Client, tmp_path: Path) -> None:
    before = answer(api)
    weights = str(tmp_path / "weights.stasisw")
    assert api.rpc("stasis_dump_weights", weights)["bytes"] > 0
    assert api.sleep(2)["host_trim"]["private_dirty_after_bytes"] > 0  # /sleep answers with the engine's host trim
    assert api.rpc("stasis_trim_host_memory")["ok"]  # what stasis capture calls, as on vLLM's workers
    api.wake("weights")
    assert api.ok("GET", "/is_sleeping") == {"is_sleeping": True}
    assert api.rpc("stasis_load_weights", weights)["bytes"] > 0
    api.wake("kv_cache")
    api.ok("POST", "/reset_prefix_cache")
    assert answer(api) == before


def test_sleep_2_without_refill_is_refused_then_slow_reload(api: Client) -> None:
    before = answer(api)
    api.sleep(2)
    api.wake()
    status, body = api.request("POST", "/v1/completions", {"prompt": PROMPT})
    assert status == 503 and body["error"]["stasis_code"] == "weights_not_loaded"
    api.rpc("reload_weights")
    assert answer(api) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/completions", b"{not json", 400, "bad_request"),
        ("POST", "/v1/completions", b'{"model": "gpt-9", "prompt": "a"}', 404, "model_not_found"),
        ("POST", "/v1/completions", b'{"prompt": "a", "max_tokens": 500}', 400, "bad_request"),
        ("POST", "/v1/completions", b'{"prompt": [1, 99999]}', 400, "bad_request"),
        ("POST", "/v1/completions", b'{"prompt": "a", "temperature": 1.0}', 400, "unsupported"),
        ("POST", "/v1/completions", b'{"prompt": "a", "logprobs": -1}', 400, "bad_request"),
        ("POST", "/sleep?level=3", None, 400, "bad_request"),
        ("POST", "/wake_up?tags=nonsense", None, 400, "bad_request"),
        ("POST", "/collective_rpc", b'{"method": "no_such"}', 400, "rpc_unknown_method"),
        ("POST", "/collective_rpc", b"[]", 400, "bad_request"),
        ("GET", "/v1/nothing", None, 404, "not_found"),
        ("GET", "/v1/completions", None, 405, "method_not_allowed"),
    ],
)
def test_api_errors(api: Client, method: str, path: str, body: bytes | None, status: int, code: str) -> None:
    got, payload = api.request(method, path, raw=body)
    assert got == status, payload
    assert payload["error"]["code"] == status and payload["error"]["stasis_code"] == code
    assert payload["error"]["message"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_stops_the_front_end_and_the_engine(model_dir: str, tmp_path: Path) -> None:
    s = ServerProcess.start(model_dir, log_path=str(tmp_path / "log"), device="cpu", args=["--max-model-len", "64"])
    try:
        s.wait_ready(120)
        engine_pid = s.client.ok("GET", "/stasis/startup")["engine_pid"]
        assert _alive(engine_pid)
    finally:
        code = s.stop(timeout=30)
    assert code == 0, s.log_tail()
    deadline = time.monotonic() + 10
    while _alive(engine_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(engine_pid)
    assert not os.path.exists(f"/proc/{s.proc.pid}")


def test_an_engine_that_cannot_start_fails_the_server(model_dir: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(Path(model_dir, "config.json").read_text())  # no weights
    s = ServerProcess.start(str(broken), log_path=str(tmp_path / "log"), device="cpu")
    with pytest.raises(RuntimeError, match="before ready"):
        s.wait_ready(120)
    assert s.proc.returncode == 1
    assert "model_missing" in s.log_tail()


def test_a_taken_port_fails_at_once(model_dir: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        s = ServerProcess.start(model_dir, log_path=str(tmp_path / "log"), device="cpu", port=taken.getsockname()[1])
        assert s.proc.wait(30) == 2
    assert "cannot listen" in s.log_tail() and "spawn_engine" not in s.log_tail()
