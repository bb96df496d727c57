"""vLLM's NCCL communicators suspended and resumed (``stasis_engine.vllm._comms``), against a stand-in for the NCCL
library vLLM loads (``PyNcclCommunicator.nccl.lib``) and for vLLM's ``parallel_state._groups``. A real NCCL group
needs two GPUs: gpu/suites/vllm-tp.sh."""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any

import pytest

from stasis_engine.errors import StasisEngineError
from stasis_engine.vllm import _comms


class FakeLib:
    """The NCCL entry points, recording (name, comm pointer, flags); ``fail`` maps a pointer to an NCCL result code,
    ``block`` makes the calls wait for it (an NCCL barrier another rank never joins)."""

    def __init__(self, fail: dict[int, int] | None = None, block: threading.Event | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail or {}
        self.block = block

        def suspend(comm: Any, flags: int) -> int:
            return self._record("ncclCommSuspend", comm.value, flags)

        def resume(comm: Any) -> int:
            return self._record("ncclCommResume", comm.value)

        self.ncclCommSuspend = suspend
        self.ncclCommResume = resume

    def _record(self, *call: Any) -> int:
        if self.block is not None:
            self.block.wait()
        self.calls.append(call)
        return self.fail.get(call[1], 0)


class FakeNccl:
    """vLLM's NCCLLibrary: the loaded library as ``lib``, and its version and error strings."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib

    def ncclGetVersion(self) -> str:
        return "2.27.3"

    def ncclGetErrorString(self, code: int) -> str:
        return {5: "invalid usage"}.get(code, "unknown")


class FakePyNccl:
    def __init__(self, nccl: FakeNccl, comm: Any, disabled: bool = False) -> None:
        self.nccl, self.comm, self.disabled = nccl, comm, disabled


class FakeGroup:
    def __init__(self, pynccl: FakePyNccl | None) -> None:
        self.device_communicator = type("CudaCommunicator", (), {"pynccl_comm": pynccl})()


class FakeParallelState:
    """vLLM's parallel_state: ``_groups`` maps each group's unique name to a weak reference to it."""

    def __init__(self, groups: dict[str, FakeGroup]) -> None:
        self.keep = groups  # the weak references below need the groups alive
        self._groups = {name: weakref.ref(g) for name, g in groups.items()}


def _state(lib: Any) -> FakeParallelState:
    nccl = FakeNccl(lib)
    return FakeParallelState(
        {
            "world:0": FakeGroup(None),  # no device communicator of its own
            # vLLM keeps a communicator as its ncclComm_t, a ctypes.c_void_p (pynccl_wrapper.py: ncclCommInitRank).
            "tp:0": FakeGroup(FakePyNccl(nccl, ctypes.c_void_p(0x1000))),
            "pp:0": FakeGroup(FakePyNccl(nccl, 0x2000, disabled=True)),  # a group of one: NCCL never set up
            "ep:0": FakeGroup(FakePyNccl(nccl, 0x3000)),
        }
    )


def test_comms_suspend_and_resume_every_live_communicator_in_group_name_order() -> None:
    lib = FakeLib()
    state = _state(lib)
    assert [name for name, _ in _comms.live_communicators(state)] == ["ep:0", "tp:0"]
    assert _comms.suspend(state, 5) == {"communicators": 2, "groups": ["ep:0", "tp:0"]}
    assert _comms.resume(state, 5) == {"communicators": 2, "groups": ["ep:0", "tp:0"]}
    assert lib.calls == [
        ("ncclCommSuspend", 0x3000, _comms.SUSPEND_MEM),
        ("ncclCommSuspend", 0x1000, _comms.SUSPEND_MEM),
        ("ncclCommResume", 0x3000),
        ("ncclCommResume", 0x1000),
    ]
    assert _comms.suspend(FakeParallelState({}), 5) == {"communicators": 0, "groups": []}


def test_comms_an_nccl_without_suspend_says_which_and_what_has_it() -> None:
    class OldLib:
        pass

    with pytest.raises(StasisEngineError) as e:
        _comms.suspend(_state(OldLib()), 5)
    assert e.value.code == "nccl_suspend_unsupported"
    assert "NCCL 2.27.3" in e.value.message and "2.29.7" in (e.value.hint or "")


def test_comms_a_failed_suspend_resumes_what_it_suspended_and_reports_nccl_error() -> None:
    lib = FakeLib(fail={0x1000: 5})
    with pytest.raises(StasisEngineError) as e:
        _comms.suspend(_state(lib), 5)
    assert e.value.code == "nccl_error" and "ncclCommSuspend of tp:0 failed: invalid usage (5)" in e.value.message
    assert lib.calls[-1] == ("ncclCommResume", 0x3000)


def test_comms_a_suspend_stuck_in_the_barrier_times_out() -> None:
    release = threading.Event()
    try:
        with pytest.raises(StasisEngineError) as e:
            _comms.suspend(_state(FakeLib(block=release)), 0.2)
        assert e.value.code == "nccl_timeout" and "did not return within 0.2 s" in e.value.message
    finally:
        release.set()  # the stuck call returns, so its thread ends with the test


def test_comms_rpc_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from stasis_engine.vllm import StasisWorkerExtension

    class Worker(StasisWorkerExtension):
        rank = 1

    assert Worker().stasis_comm_suspend("0")["error"]["code"] == "bad_argument"
    monkeypatch.setitem(sys.modules, "vllm", None)  # no vLLM here
    res = Worker().stasis_comm_resume("30")
    assert not res["ok"] and res["rank"] == 1 and res["error"]["code"] == "vllm_unavailable"


STUB_NCCL = r"""
/* The two NCCL entry points as nccl.h declares them, recording what they were given. */
typedef void *ncclComm_t;
static void *last_comm; static int last_flags = -1; static int calls;
int ncclCommSuspend(ncclComm_t comm, int flags) { last_comm = comm; last_flags = flags; calls++; return 0; }
int ncclCommResume(ncclComm_t comm) { last_comm = comm; calls++; return comm == (void *)0x2bad ? 5 : 0; }
void *stub_last_comm(void) { return last_comm; }
int stub_last_flags(void) { return last_flags; }
int stub_calls(void) { return calls; }
"""


def test_comms_call_a_real_shared_library_through_ctypes(tmp_path: Any) -> None:
    """The calls as they reach a C library: the communicator's pointer and the flag, through the argument types
    set here (a stand-in built with the system's C compiler; vLLM loads libnccl.so.2 the same way)."""
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    (tmp_path / "nccl.c").write_text(STUB_NCCL)
    so = tmp_path / "libstubnccl.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(so), str(tmp_path / "nccl.c")], check=True)
    lib = ctypes.CDLL(str(so))
    lib.stub_last_comm.restype = ctypes.c_void_p
    nccl = FakeNccl(lib)
    state = FakeParallelState({"tp:0": FakeGroup(FakePyNccl(nccl, ctypes.c_void_p(0x7F00DEAD0000)))})
    assert _comms.suspend(state, 5)["communicators"] == 1
    assert lib.stub_last_comm() == 0x7F00DEAD0000 and lib.stub_last_flags() == _comms.SUSPEND_MEM
    assert _comms.resume(state, 5)["groups"] == ["tp:0"] and lib.stub_calls() == 2
    failing = FakeParallelState({"tp:0": FakeGroup(FakePyNccl(nccl, ctypes.c_void_p(0x2BAD)))})
    with pytest.raises(StasisEngineError) as e:
        _comms.resume(failing, 5)
    assert e.value.code == "nccl_error" and "invalid usage (5)" in e.value.message
