"""The weights stager's parts that run without a GPU (CI): the job's checks, its targets filled through the
load pipelines, and the hand-off of a file descriptor to the engine's ``stasis_adopt_weights`` over a real
Unix socket. The GPU path (driver-API memory exported and adopted) runs in tests/gpu/test_weights_gpu.py."""

from __future__ import annotations

import json
import mmap
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from _contracts import stager_lines

from stasis_engine.errors import StasisEngineError
from stasis_engine.reference.rpc import RpcMethods
from stasis_engine.weights import dump
from stasis_engine.weights._targets import Device
from stasis_engine.weights.load import LoadTuning, load_targets
from stasis_engine.weights.stage import hand_off, listen, parse_job, targets_at


def job(**over: Any) -> str:
    base = {
        "file": "/w",
        "gpu": "GPU-1",
        "socket": "/s",
        "arena_size": 4096,
        "tensors": [{"name": "a", "offset": 0, "nbytes": 1024}, {"name": "b", "offset": 1024, "nbytes": 2048}],
    }
    base.update(over)
    return json.dumps(base)


def test_a_good_job_gets_defaults() -> None:
    j = parse_job(job())
    assert j["reserve_bytes"] == 0 and j["wait_s"] == 120 and j["hold"] is False and len(j["tensors"]) == 2


@pytest.mark.parametrize(
    "text, words",
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        (job(gpu=None), "'gpu'"),
        (job(arena_size="4096"), "'arena_size'"),
        (job(tensors=[{"name": "a", "offset": -1, "nbytes": 4}]), "bad tensor"),
        (
            job(tensors=[{"name": "a", "offset": 0, "nbytes": 2048}, {"name": "b", "offset": 1024, "nbytes": 8}]),
            "overlaps",
        ),
        (job(tensors=[{"name": "a", "offset": 4000, "nbytes": 200}]), "leaves the arena"),
        (job(hold="yes"), "'hold'"),
    ],
)
def test_bad_jobs_are_refused_before_anything_runs(text: str, words: str) -> None:
    with pytest.raises(StasisEngineError) as e:
        parse_job(text)
    assert words in e.value.message


def test_the_stager_targets_fill_an_arena_at_the_layouts_offsets(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(3)
    src = {"w1": torch.randn(300, 70, generator=g).to(torch.bfloat16), "w2": torch.randn(999, generator=g)}
    path = tmp_path / "w.stasisw"
    dump(src, path)
    # The layout an engine reports: each tensor at an offset of its arena (256-byte aligned), a gap between them.
    tensors = [
        {"name": "w1", "offset": 0, "nbytes": src["w1"].numel() * 2, "dtype": "bfloat16", "shape": [300, 70]},
        {"name": "w2", "offset": 45056, "nbytes": 999 * 4, "dtype": "float32", "shape": [999]},
    ]
    arena = mmap.mmap(-1, 1 << 16)
    arena.write(b"\xa5" * (1 << 16))
    base = torch.frombuffer(arena, dtype=torch.uint8)
    stats = load_targets("tensors", targets_at(base.data_ptr(), tensors), Device("cpu"), path, LoadTuning(method="cpu"))
    assert stats.bytes == sum(t["nbytes"] for t in tensors)
    assert torch.equal(base[0:42000].view(torch.bfloat16).view(300, 70), src["w1"])
    assert torch.equal(base[45056 : 45056 + 3996].view(torch.float32), src["w2"])
    assert set(base[42000:45056].tolist()) == {0xA5}  # the gap is not written


def test_a_layout_that_differs_from_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.stasisw"
    dump({"w1": torch.zeros(16)}, path)
    arena = torch.zeros(64, dtype=torch.uint8)
    with pytest.raises(StasisEngineError) as e:
        load_targets(
            "tensors",
            targets_at(arena.data_ptr(), [{"name": "w1", "offset": 0, "nbytes": 32}]),
            Device("cpu"),
            path,
            LoadTuning(method="cpu"),
        )
    assert e.value.code == "weights_target"


class FakeEngine:
    """Stands in for the engine: records what adopt_weights got (the fd must be open, a new one in this process)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.got: list[tuple[int, int]] = []

    def adopt_weights(self, fd: int, size: int) -> dict[str, Any]:
        os.fstat(fd)
        if self.fail:
            raise StasisEngineError("weights_layout", "arena weights has 8192 bytes, the memory offered has 4096")
        self.got.append((os.read(fd, 5), size))  # type: ignore[arg-type]
        return {"bytes": size, "ms": 0.1, "weights": "ready"}


def _stager(sock_path: str, payload: bytes, size: int) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []
    sock = listen(sock_path)
    r, w = os.pipe()
    os.write(w, payload)
    os.close(w)

    def serve() -> None:
        try:
            hand_off(sock, [r], [size], 10)
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)
        finally:
            os.close(r)
            sock.close()

    t = threading.Thread(target=serve)
    t.start()
    return t, errors


def test_the_engine_takes_the_memory_over_the_socket_and_acknowledges(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    t, errors = _stager(path, b"hello", 4096)
    assert os.stat(path).st_mode & 0o777 == 0o600
    engine = FakeEngine()
    out = RpcMethods(engine).call("stasis_adopt_weights", [path], {})  # type: ignore[arg-type]
    t.join(10)
    assert not errors
    assert engine.got == [(b"hello", 4096)]
    assert out["ok"] and out["bytes"] == 4096


def test_an_engine_that_refuses_says_why_to_both_sides(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    t, errors = _stager(path, b"x", 4096)
    with pytest.raises(StasisEngineError) as e:
        RpcMethods(FakeEngine(fail=True)).call("stasis_adopt_weights", [path], {})  # type: ignore[arg-type]
    t.join(10)
    assert e.value.code == "weights_layout"
    assert len(errors) == 1 and isinstance(errors[0], StasisEngineError) and errors[0].code == "stage_refused"
    assert "8192" in errors[0].message


def test_no_stager_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StasisEngineError) as e:
        RpcMethods(FakeEngine()).call("stasis_adopt_weights", [str(tmp_path / "none.sock")], {})  # type: ignore[arg-type]
    assert e.value.code == "stage_unreachable"


def test_the_stager_reads_in_the_idle_io_class() -> None:
    import platform
    import subprocess
    import sys

    if platform.machine() != "x86_64":
        pytest.skip("checks the class with x86_64's ioprio_get")
    # In a child (the class is per process): set it, then read it back from the kernel (ioprio_get = 252).
    code = (
        "import ctypes; from stasis_engine.weights.stage import lower_io_priority as low; print(low(), "
        "ctypes.CDLL(None).syscall(252, 1, 0) >> 13)"
    )
    done, klass = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert (done, klass) == ("idle", "3")


def test_the_stager_reads_with_fewer_threads_from_memory_than_from_disk(tmp_path: Path) -> None:
    from stasis_engine.weights.stage import _resident, _threads

    path = tmp_path / "w"
    path.write_bytes(b"\\1" * (1 << 20))  # just written: in the page cache
    assert _resident(str(path)) == 1.0
    assert _threads(1.0) == 8 and _threads(0.5) == 16


def test_the_keeper_answers_each_job_by_id_and_survives_failures() -> None:
    """Without a GPU every well-formed job fails at the driver, a malformed one at parsing: one error line each,
    carrying the job's id, and the keeper reads on until its stdin closes."""
    import subprocess
    import sys

    bad = json.dumps({"id": "j1", "file": "/w"})
    good = json.dumps({**json.loads(job()), "id": "j2"})
    release = json.dumps({"op": "release", "id": "r1"})
    out = subprocess.run(
        [sys.executable, "-m", "stasis_engine.weights.stage", "--keep"],
        input=f"{release}\n{bad}\n\n{good}\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert out.returncode == 0, out.stderr
    lines = stager_lines(out.stdout)
    assert lines[0] == {"event": "released", "id": "r1", "images": 0, "held": 0}
    lines = lines[1:]
    assert [(x["event"], x["id"]) for x in lines] == [("error", "j1"), ("error", "j2")]
    assert lines[0]["error"]["code"] == "bad_argument"
    assert lines[1]["error"]["code"] in ("cuda_error", "gpu_unavailable")


class FakeRuntime:
    """The driver-API runtime on the CPU, for the keeper's logic: "device" memory is a memfd (exported as a new
    descriptor of it, as the driver exports GPU memory), pinned memory is anonymous memory, copies are memmove."""

    device = 0

    def __init__(self, fail_pin: bool = False) -> None:
        self.fail_pin = fail_pin
        self.host: dict[int, mmap.mmap] = {}
        self.freed: list[int] = []
        self.copies_from_host: list[int] = []

    def set_device(self, index: int) -> None: ...
    def get_device(self) -> int:
        return 0

    def device_synchronize(self) -> None: ...
    def host_register(self, address: int, size: int, flags: int) -> None: ...
    def host_unregister(self, address: int) -> None: ...
    def stream_create(self) -> int:
        return 1

    def stream_destroy(self, stream: int) -> None: ...
    def stream_synchronize(self, stream: int) -> None: ...
    def event_create(self) -> int:
        return 1

    def event_record(self, event: int, stream: int) -> None: ...
    def event_synchronize(self, event: int) -> None: ...
    def event_destroy(self, event: int) -> None: ...
    def pointer_device(self, address: int) -> None:
        return None

    def free_bytes(self) -> int:
        return 1 << 40

    def release(self) -> None: ...

    def memcpy_async(self, dst: int, src: int, size: int, kind: int, stream: int) -> None:
        import ctypes

        if src in self.host:
            self.copies_from_host.append(src)
        ctypes.memmove(dst, src, size)

    def host_alloc(self, size: int) -> int:
        if self.fail_pin:
            raise StasisEngineError("cuda_error", "cuMemHostAlloc: out of memory")
        m = mmap.mmap(-1, size)
        address = torch.frombuffer(m, dtype=torch.uint8).data_ptr()
        self.host[address] = m
        return address

    def host_free(self, address: int) -> None:
        self.host.pop(address)
        self.freed.append(address)

    def exportable(self, size: int, pieces: list[int] | None = None) -> Any:
        pieces = pieces or [size]
        fd = os.memfd_create("fake-gpu")
        os.ftruncate(fd, size)
        view = mmap.mmap(fd, size)

        class Memory:
            mapped = view  # alive as long as the memory
            address = torch.frombuffer(view, dtype=torch.uint8).data_ptr()

            @staticmethod
            def export_fds() -> list[int]:
                """One descriptor per allocation, as the driver exports each: here a memfd holding its bytes."""
                if len(pieces) == 1:
                    return [os.dup(fd)]
                out, offset = [], 0
                for piece in pieces:
                    one = os.memfd_create("fake-gpu-piece")
                    os.write(one, view[offset : offset + piece])
                    out.append(one)
                    offset += piece
                return out

            @staticmethod
            def close() -> None:
                os.close(fd)

        return Memory()


class ReadingEngine:
    """Takes the memory as an engine would, and keeps what it holds."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    def adopt_weights(self, fd: int, size: int) -> dict[str, Any]:
        self.got.append(os.pread(fd, size, 0))
        return {"bytes": size, "ms": 0.1, "weights": "ready"}


def _keeper_job(
    keeper: Any,
    sock: str,
    file: Path,
    tensors: list[dict[str, Any]],
    size: int,
    capsys: pytest.CaptureFixture[str],
    job_id: str,
) -> tuple[bytes, list[dict[str, Any]]]:
    """Runs one keeper job with an engine that adopts its memory; what the engine got, and the lines written."""
    engine = ReadingEngine()
    job_ = parse_job(
        json.dumps(
            {
                "id": job_id,
                "file": str(file),
                "gpu": "GPU-1",
                "socket": sock,
                "arena_size": size,
                "tensors": tensors,
                "wait_s": 10,
            }
        )
    )
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            keeper.serve(job_)
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)

    t = threading.Thread(target=serve)
    t.start()
    for _ in range(1000):
        if os.path.exists(sock):
            break
        threading.Event().wait(0.01)
    RpcMethods(engine).call("stasis_adopt_weights", [sock], {})  # type: ignore[arg-type]
    t.join(30)
    assert not errors, errors
    return engine.got[0], stager_lines(capsys.readouterr().out)


def test_the_keeper_fills_a_files_first_job_from_the_file_and_later_ones_from_its_pinned_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stasis_engine.weights.stage import Keeper

    size = 1 << 16
    layout = [{"name": "w", "offset": 4096, "nbytes": 4000 * 4, "dtype": "float32", "shape": [4000]}]

    def weights(path: Path, seed: int) -> bytes:
        w = torch.randn(4000, generator=torch.Generator().manual_seed(seed))
        dump({"w": w}, path)
        arena = bytearray(size)
        arena[4096 : 4096 + 16000] = w.numpy().tobytes()
        return bytes(arena)

    rt = FakeRuntime()
    keeper = Keeper(open_runtime=lambda gpu: rt, max_images=2)  # type: ignore[arg-type, return-value]
    sock = str(tmp_path / "s.sock")
    a, b, c = tmp_path / "a.stasisw", tmp_path / "b.stasisw", tmp_path / "c.stasisw"
    want_a = weights(a, 1)

    got, lines = _keeper_job(keeper, sock, a, layout, size, capsys, "j1")
    assert got[4096 : 4096 + 16000] == want_a[4096 : 4096 + 16000]
    assert [x["event"] for x in lines] == ["ready", "handed-off", "pinned"]
    assert lines[0]["load"]["method"] != "pinned-image" and lines[0]["load"]["image"] == "pinned after the hand-off"
    assert lines[2] == {"event": "pinned", "id": "j1", "bytes": size, "seconds": lines[2]["seconds"], "held": size}

    got, lines = _keeper_job(keeper, sock, a, layout, size, capsys, "j2")
    assert got[4096 : 4096 + 16000] == want_a[4096 : 4096 + 16000]
    assert [x["event"] for x in lines] == ["ready", "handed-off"]
    assert lines[0]["load"]["method"] == "pinned-image" and len(rt.copies_from_host) == 1

    # A rewritten file is read again and its old image freed; beyond two files the least recently used goes.
    image_a = next(iter(rt.host))
    os.utime(a, ns=(1, 1))
    want_a = weights(a, 2)
    got, lines = _keeper_job(keeper, sock, a, layout, size, capsys, "j3")
    assert got[4096 : 4096 + 16000] == want_a[4096 : 4096 + 16000] and lines[-1]["event"] == "pinned"
    assert rt.freed == [image_a] and len(keeper.images) == 1
    weights(b, 3)
    weights(c, 4)
    _keeper_job(keeper, sock, b, layout, size, capsys, "j4")
    _keeper_job(keeper, sock, a, layout, size, capsys, "j5")  # a is now the most recently used
    _keeper_job(keeper, sock, c, layout, size, capsys, "j6")
    assert [k[0] for k in keeper.images] == [str(a.resolve()), str(c.resolve())]
    assert keeper.held_bytes() == 2 * size, "held: the two images left, not every image ever pinned"

    # Released (POST /v1/weights/release): the images are freed, the runtime kept; the next job reads the file.
    held = [address for _, address in keeper.images.values()]
    assert keeper.release_images() == 2 and keeper.images == {} and rt.freed[-2:] == held
    got, lines = _keeper_job(keeper, sock, c, layout, size, capsys, "j7")
    assert lines[0]["load"]["method"] != "pinned-image" and [x["event"] for x in lines] == [
        "ready",
        "handed-off",
        "pinned",
    ]
    assert keeper.runtimes == {"GPU-1": rt}
    keeper.close()
    assert not rt.host


def test_a_pin_line_pins_the_image_before_any_job_so_the_first_job_copies_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stasis_engine.weights.stage import Keeper

    w = torch.randn(1024, generator=torch.Generator().manual_seed(5))
    dump({"w": w}, tmp_path / "w.stasisw")
    layout = [{"name": "w", "offset": 4096, "nbytes": 4096, "dtype": "float32", "shape": [1024]}]
    pin = {"id": "p1", "file": str(tmp_path / "w.stasisw"), "gpu": "GPU-1", "arena_size": 8192, "tensors": layout}
    rt = FakeRuntime()
    keeper = Keeper(open_runtime=lambda gpu: rt)  # type: ignore[arg-type, return-value]
    keeper.pin_ahead(parse_job(json.dumps(pin), socket_needed=False))
    keeper.pin_ahead(parse_job(json.dumps({**pin, "id": "p2"}), socket_needed=False))
    lines = stager_lines(capsys.readouterr().out)
    assert [(x["event"], x["id"], x["bytes"], x["already"], x["held"]) for x in lines] == [
        ("pinned", "p1", 8192, False, 8192),
        ("pinned", "p2", 8192, True, 8192),
    ]
    assert len(rt.host) == 1, "pinned once"
    got, lines = _keeper_job(keeper, str(tmp_path / "s.sock"), tmp_path / "w.stasisw", layout, 8192, capsys, "j1")
    assert got[4096:] == w.numpy().tobytes()
    assert lines[0]["load"]["method"] == "pinned-image" and [x["event"] for x in lines] == ["ready", "handed-off"]
    with pytest.raises(StasisEngineError, match="socket"):
        parse_job(json.dumps(pin))  # a job (not a pin) still needs its socket
    keeper.pin_ahead(
        parse_job(json.dumps({**pin, "id": "p3", "file": str(tmp_path / "gone.stasisw")}), socket_needed=False)
    )
    [line] = stager_lines(capsys.readouterr().out)
    assert line["event"] == "pin-failed" and line["id"] == "p3" and "gone.stasisw" in line["message"]
    keeper.close()
    assert not rt.host


def test_a_keeper_that_cannot_pin_has_still_served_the_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stasis_engine.weights.stage import Keeper

    w = torch.arange(1024, dtype=torch.float32)
    dump({"w": w}, tmp_path / "w.stasisw")
    keeper = Keeper(open_runtime=lambda gpu: FakeRuntime(fail_pin=True))  # type: ignore[arg-type, return-value]
    layout = [{"name": "w", "offset": 0, "nbytes": 4096, "dtype": "float32", "shape": [1024]}]
    got, lines = _keeper_job(keeper, str(tmp_path / "s.sock"), tmp_path / "w.stasisw", layout, 8192, capsys, "j1")
    assert got[:4096] == w.numpy().tobytes()
    assert [x["event"] for x in lines] == ["ready", "handed-off", "pin-failed"]
    assert "out of memory" in lines[2]["message"] and not keeper.images and lines[2]["held"] == 0


def test_the_stagers_socket_appears_only_once_it_listens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: bound at its path and then listening, a connect in between (a client waiting for the path) was
    refused (a keeper test failed 1 run in ~5 that way)."""
    import socket

    path = str(tmp_path / "s.sock")
    seen: list[bool] = []
    real_listen = socket.socket.listen

    def listen_(self: socket.socket, *args: Any) -> None:
        seen.append(os.path.exists(path))
        real_listen(self, *args)

    monkeypatch.setattr(socket.socket, "listen", listen_)
    sock = listen(path)
    try:
        assert seen == [False] and os.path.exists(path) and not os.path.exists(path + ".t")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)
    finally:
        sock.close()


def test_lines_wait_for_one_line_and_keep_the_others_in_order() -> None:
    from stasis_engine.weights.stage import Lines, go_line

    r, w = os.pipe()
    try:
        lines = Lines(r)
        os.write(w, b'{"op": "release", "id": "r1"}\n{"op": "go", "id": "j2"}\n{"op": "go", "id": "j1"}\n{"id": "j3"')
        assert lines.wait_for(go_line("j1"), 5)  # the two lines before it are kept
        assert not lines.wait_for(go_line("j9"), 0.05)  # no such line: the timeout
        os.write(w, b', "file": "/w"}\n')
        assert json.loads(lines.next() or "") == {"op": "release", "id": "r1"}
        assert lines.wait_for(go_line("j2"), 0)  # among the kept lines
        assert json.loads(lines.next() or "") == {"id": "j3", "file": "/w"}
        os.write(w, b"last, no newline")
        os.close(w)
        w = -1
        assert not lines.wait_for(go_line(None), 5)  # the end of input ends the wait
        assert lines.next() == "last, no newline" and lines.next() is None
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_a_held_job_reads_its_cold_file_only_after_its_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keeper creates the memory and sets the load up at once (its header read, its file opened), reads none
    of the weights of a file that is not in the page cache until the go line of its job comes (a release sent
    meanwhile waits its turn), and says how long it held."""
    from stasis_engine.weights import _libc, stage

    w = torch.arange(1024, dtype=torch.float32)
    dump({"w": w}, tmp_path / "w.stasisw")
    monkeypatch.setattr(stage, "_resident", lambda path: 0.0)  # as if the page cache had been dropped
    reads: list[float] = []  # when the weights' bytes were read
    real_read = _libc.read_exact
    monkeypatch.setattr(_libc, "read_exact", lambda *a: (reads.append(time.monotonic()), real_read(*a))[1])
    loads: list[float] = []  # when the load began
    real_load = stage.load_targets
    monkeypatch.setattr(stage, "load_targets", lambda *a, **k: (loads.append(time.monotonic()), real_load(*a, **k))[1])
    rt = FakeRuntime()
    keeper = stage.Keeper(open_runtime=lambda gpu: rt)  # type: ignore[arg-type, return-value]
    sock = str(tmp_path / "s.sock")
    j = parse_job(
        json.dumps(
            {
                "id": "j1",
                "file": str(tmp_path / "w.stasisw"),
                "gpu": "GPU-1",
                "socket": sock,
                "arena_size": 8192,
                "hold": True,
                "wait_s": 30,
                "tensors": [{"name": "w", "offset": 0, "nbytes": 4096, "dtype": "float32", "shape": [1024]}],
            }
        )
    )
    r, wfd = os.pipe()
    lines = stage.Lines(r)
    held_from: list[float] = []  # when the job began to hold (its gate), measured here rather than assumed

    def hold(seconds: float) -> bool:
        held_from.append(time.monotonic())
        return lines.wait_for(stage.go_line("j1"), seconds)

    t = threading.Thread(target=keeper.serve, args=(j, hold))
    t.start()
    try:
        # Waits for the job's gate (bounded) instead of a fixed pause, which a busy machine can overrun.
        deadline = time.monotonic() + 10
        while not held_from and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert reads == [] and loads and held_from and os.path.exists(sock)  # listening, set up, holding, nothing read
        os.write(wfd, b'{"op": "release", "id": "r1"}\n{"op": "go", "id": "j0"}\n')
        threading.Event().wait(0.1)
        assert reads == []  # another job's go is not this one's
        threading.Event().wait(0.3)
        went = time.monotonic()
        os.write(wfd, b'{"op": "go", "id": "j1"}\n')
        engine = ReadingEngine()
        RpcMethods(engine).call("stasis_adopt_weights", [sock], {})  # type: ignore[arg-type]
        t.join(30)
        assert reads and reads[0] >= went and engine.got[0][:4096] == w.numpy().tobytes()
        ready = stager_lines(capsys.readouterr().out)[0]
        assert ready["event"] == "ready" and ready["load"]["go"] is True and ready["load"]["held_s"] >= 0.35
        assert ready["load"]["stages"]["gate"] >= 0.35 and ready["load"]["seconds"] < 0.35  # the wait is not the load's
        assert json.loads(lines.next() or "") == {"op": "release", "id": "r1"}
    finally:
        t.join(30)
        keeper.close()
        os.close(r)
        os.close(wfd)


def test_a_held_job_whose_file_is_in_memory_does_not_wait(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stasis_engine.weights.stage import Keeper

    w = torch.arange(1024, dtype=torch.float32)
    dump({"w": w}, tmp_path / "w.stasisw")  # just written: in the page cache
    keeper = Keeper(open_runtime=lambda gpu: FakeRuntime())  # type: ignore[arg-type, return-value]
    asked: list[float] = []
    sock = str(tmp_path / "s.sock")
    j = parse_job(
        json.dumps(
            {
                "id": "j1",
                "file": str(tmp_path / "w.stasisw"),
                "gpu": "GPU-1",
                "socket": sock,
                "arena_size": 8192,
                "hold": True,
                "wait_s": 30,
                "tensors": [{"name": "w", "offset": 0, "nbytes": 4096, "dtype": "float32", "shape": [1024]}],
            }
        )
    )
    t = threading.Thread(target=keeper.serve, args=(j, lambda s: asked.append(s) or True))
    t.start()
    for _ in range(1000):
        if os.path.exists(sock):
            break
        threading.Event().wait(0.01)
    RpcMethods(ReadingEngine()).call("stasis_adopt_weights", [sock], {})  # type: ignore[arg-type]
    t.join(30)
    keeper.close()
    ready = stager_lines(capsys.readouterr().out)[0]
    assert asked == [] and "held_s" not in ready["load"]


def extents_job(**over: Any) -> str:
    base = {
        "file": "/w",
        "gpu": "GPU-1",
        "socket": "/s",
        "extents": [{"address": 0x10000, "size": 4096}, {"address": 0x30000, "size": 8192}],
    }
    base.update(over)
    return json.dumps(base)


def test_an_extents_job_is_one_allocation_per_extent() -> None:
    j = parse_job(extents_job())
    assert j["pieces"] == [4096, 8192] and j["arena_size"] == 12288


@pytest.mark.parametrize(
    "extents, words",
    [
        ([], "no extents"),
        ([{"address": 0x10000, "size": 0}], "bad extent"),
        ([{"address": 0x10000, "size": True}], "bad extent"),
        ([{"address": 0x30000, "size": 4096}, {"address": 0x10000, "size": 4096}], "out of address order"),
        ([{"address": 0x10000, "size": 0x30000}, {"address": 0x30000, "size": 4096}], "overlaps"),
    ],
)
def test_bad_extents_jobs_are_refused_before_anything_runs(extents: list[Any], words: str) -> None:
    with pytest.raises(StasisEngineError) as e:
        parse_job(extents_job(extents=extents))
    assert words in e.value.message


def test_an_extents_job_fills_each_extent_back_to_back_from_an_extents_dump(tmp_path: Path) -> None:
    from stasis_engine.weights import Extent
    from stasis_engine.weights.stage import job_targets

    # An engine's weights pool: allocations at scattered addresses, dumped by (address, size).
    pool = [
        torch.randint(0, 256, (n,), dtype=torch.uint8, generator=torch.Generator().manual_seed(n))
        for n in (8192, 4096, 12288)
    ]
    extents = [Extent(t.data_ptr(), t.numel()) for t in pool]
    path = tmp_path / "w.stasisw"
    dump(extents, path, device="cpu")
    j = parse_job(extents_job(extents=[{"address": e.address, "size": e.size} for e in sorted(extents)]))
    staged = torch.full((j["arena_size"],), 0xA5, dtype=torch.uint8)
    kind, targets = job_targets(j, staged.data_ptr())
    load_targets(kind, targets, Device("cpu"), path, LoadTuning(method="cpu"))
    offset = 0
    for e in sorted(extents):
        want = next(t for t in pool if t.data_ptr() == e.address)
        assert torch.equal(staged[offset : offset + e.size], want)
        offset += e.size


def test_hundreds_of_allocations_go_over_one_hand_off(tmp_path: Path) -> None:
    """More descriptors than one message can carry (the kernel's limit is 253): all arrive, in order."""
    import socket as socket_

    from stasis_engine.weights.handoff import recv_memory, send_memory

    n = 600
    a, b = socket_.socketpair()
    files = []
    for i in range(n):
        fd = os.memfd_create(f"piece-{i}")
        os.write(fd, str(i).encode())
        files.append(fd)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            send_memory(a, files, [4096 * (1 + i % 3) for i in range(n)])
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)

    t = threading.Thread(target=send)
    t.start()
    pieces, fds = recv_memory(b)
    t.join(10)
    try:
        assert not errors and pieces == [4096 * (1 + i % 3) for i in range(n)] and len(fds) == n
        assert [os.pread(fd, 8, 0) for fd in fds] == [str(i).encode() for i in range(n)]
    finally:
        for fd in fds + files:
            os.close(fd)
        a.close()
        b.close()


def test_a_hand_off_whose_header_lies_is_refused_and_leaks_no_descriptor(tmp_path: Path) -> None:
    import socket as socket_

    from stasis_engine.weights.handoff import recv_memory

    a, b = socket_.socketpair()
    r, w = os.pipe()
    before = len(os.listdir("/proc/self/fd"))
    socket_.send_fds(a, [b'{"size": 100, "pieces": [60, 50]}\n'], [r, w])
    with pytest.raises(StasisEngineError) as e:
        recv_memory(b)
    assert e.value.code == "stage_protocol" and "do not add up" in e.value.message
    assert len(os.listdir("/proc/self/fd")) == before  # the two received descriptors were closed
    for fd in (r, w):
        os.close(fd)
    a.close()
    b.close()


def test_the_keeper_stages_an_extents_layout_and_hands_over_each_allocation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A vLLM-style layout through the keeper: first job from the file, second from the pinned image; the engine
    gets one allocation per extent, each holding that extent's bytes."""
    from stasis_engine.weights import Extent
    from stasis_engine.weights.handoff import take_memory
    from stasis_engine.weights.stage import Keeper

    pool = [
        torch.randint(0, 256, (n,), dtype=torch.uint8, generator=torch.Generator().manual_seed(n)) for n in (8192, 4096)
    ]
    extents = sorted(Extent(t.data_ptr(), t.numel()) for t in pool)
    path = tmp_path / "w.stasisw"
    dump(list(extents), path, device="cpu")
    want = [bytes(next(t for t in pool if t.data_ptr() == e.address).numpy()) for e in extents]
    keeper = Keeper(open_runtime=lambda gpu: FakeRuntime())  # type: ignore[arg-type, return-value]
    sock = str(tmp_path / "s.sock")
    for job_id in ("j1", "j2"):
        j = parse_job(
            json.dumps(
                {
                    "id": job_id,
                    "file": str(path),
                    "gpu": "GPU-1",
                    "socket": sock,
                    "wait_s": 10,
                    "extents": [{"address": e.address, "size": e.size} for e in extents],
                }
            )
        )
        t = threading.Thread(target=keeper.serve, args=(j,))
        t.start()
        for _ in range(1000):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        got = take_memory(
            sock,
            lambda pieces, fds: {
                "pieces": pieces,
                "bytes": [os.pread(fd, p, 0) for fd, p in zip(fds, pieces, strict=True)],
            },
        )
        t.join(30)
        assert got["pieces"] == [e.size for e in extents] and got["bytes"] == want
    lines = stager_lines(capsys.readouterr().out)
    assert [x["event"] for x in lines] == ["ready", "handed-off", "pinned", "ready", "handed-off"]
    assert lines[3]["load"]["method"] == "pinned-image"
