"""``python -m stasis_engine.weights.stage``: fill an engine's weights into fresh GPU memory while it is restored.

The restore's refill used to wait for CRIU and the CUDA restore; the stager runs beside them. It reads a job
(JSON on stdin), creates device memory the size of the engine's weights arena on the engine's GPU, fills it
from the weights file with the same pipelines as ``load_into`` (driver API, no torch: it starts in tens of ms),
then hands the memory to the engine as a file descriptor over a Unix socket. The engine maps it at its arena's
addresses (``stasis_adopt_weights``): the weights are in place without a copy on the restore's path.

Job: ``{"file": PATH, "gpu": UUID, "socket": PATH, "arena_size": N, "tensors": [{"name", "offset", "nbytes",
"dtype", "shape"}], "reserve_bytes": N, "wait_s": S}``. ``reserve_bytes``: GPU memory to leave free for the
rest of the restore (the CUDA restore of the engine runs at the same time); without it, the stager refuses.

Stdout, one JSON object per line: ``{"event": "ready", "bytes", "seconds", "load": {...}}`` once the memory is
filled and the socket listens; ``{"event": "handed-off", "seconds"}`` once the engine acknowledged; or
``{"event": "error", "error": {"code", "message", "hint"}}`` (exit status 1). Nothing outlives the process
but the memory the engine imported.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any

from ..errors import StasisEngineError
from ._cudadrv import Driver, DriverRuntime, ExportableMemory
from ._targets import Device, Target

ACK = b"ok"


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def parse_job(text: str) -> dict[str, Any]:
    """The job, checked: every field present and of its type, tensors inside the arena and not overlapping."""
    try:
        job = json.loads(text)
    except json.JSONDecodeError as e:
        raise StasisEngineError("bad_argument", f"the stager's job is not JSON: {e}") from e
    if not isinstance(job, dict):
        raise StasisEngineError("bad_argument", "the stager's job must be a JSON object")
    for key, kind in (("file", str), ("gpu", str), ("socket", str), ("arena_size", int), ("tensors", list)):
        if not isinstance(job.get(key), kind) or isinstance(job.get(key), bool):
            raise StasisEngineError("bad_argument", f"the stager's job needs {key!r} ({kind.__name__})")
    job.setdefault("reserve_bytes", 0)
    job.setdefault("wait_s", 120)
    end = 0
    for t in sorted(job["tensors"], key=lambda t: t.get("offset", -1) if isinstance(t, dict) else -1):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(t.get("offset"), int) \
                or not isinstance(t.get("nbytes"), int) or t["offset"] < 0 or t["nbytes"] < 0:
            raise StasisEngineError("bad_argument", f"bad tensor in the stager's job: {t!r}")
        if t["offset"] < end or t["offset"] + t["nbytes"] > job["arena_size"]:
            raise StasisEngineError("weights_layout", f"tensor {t['name']!r} overlaps another or leaves the arena "
                                    f"({t['offset']}+{t['nbytes']} of {job['arena_size']} bytes)")
        end = t["offset"] + t["nbytes"]
    return job


def targets_at(base: int, tensors: list[dict[str, Any]]) -> list[Target]:
    """The job's tensors as load targets at ``base``; one group, so neighbours coalesce into long copies."""
    return [Target(t["name"], base + t["offset"], t["nbytes"], t.get("dtype"),
                   tuple(t["shape"]) if isinstance(t.get("shape"), list) else None, 0) for t in tensors]


def listen(path: str) -> socket.socket:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(1)
    return sock


def hand_off(sock: socket.socket, fd: int, size: int, wait_s: float) -> None:
    """Sends ``fd`` (with the size) to the first process that connects and waits for its acknowledgement."""
    sock.settimeout(wait_s)
    try:
        conn, _ = sock.accept()
    except TimeoutError as e:
        raise StasisEngineError("stage_timeout", f"no engine took the weights within {wait_s:.0f} s") from e
    with conn:
        conn.settimeout(wait_s)
        socket.send_fds(conn, [json.dumps({"size": size}).encode()], [fd])
        answer = conn.recv(4096)
    if answer != ACK:
        raise StasisEngineError("stage_refused", f"the engine did not take the weights: {answer.decode(errors='replace') or 'no answer'}")


def _threads(path: str) -> int:
    """STASIS_STAGE_THREADS, else by where the file is. In the page cache: 8 (copies are CPU work that CRIU and
    the CUDA restore beside it also need; on the H100, 8 threads: CRIU 0.28-0.38 s, 16: 0.34-0.41 s). On disk:
    16 (reads wait on the disk; more in flight keep it busy)."""
    value = os.environ.get("STASIS_STAGE_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return 8 if _resident(path) >= 0.98 else 16


def _resident(path: str) -> float:
    """The fraction of the file in the page cache (0 where mincore cannot tell)."""
    from . import _libc

    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 1.0
        base = _libc.map_file(fd, size)
        try:
            return _libc.resident_fraction(base, [(0, size)]) or 0.0
        finally:
            _libc.unmap(base, size)
    finally:
        os.close(fd)


def _method() -> str:
    """STASIS_STAGE_METHOD: the loader's method (auto, pinned-ring, hostreg, direct); default auto."""
    return os.environ.get("STASIS_STAGE_METHOD", "auto")


def _nice() -> None:
    """STASIS_STAGE_NICE=N: run the stager at this CPU niceness (default 0: unchanged)."""
    value = os.environ.get("STASIS_STAGE_NICE", "")
    if value.lstrip("-").isdigit() and int(value):
        os.nice(int(value))


_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}
_IOPRIO_CLASS_IDLE = 3


def lower_io_priority() -> str:
    """Puts this process's disk reads in the idle I/O class (STASIS_STAGE_IOPRIO=be keeps the default): from a
    cold disk, CRIU's many small reads (metadata images, the build-ids of the libraries it maps) otherwise wait
    behind the stager's deep queue of large reads, and CRIU is what the restore waits for first. The kernel's
    mq-deadline and bfq schedulers honour the class; "none" does not. Returns what was done, for the report."""
    import ctypes
    import platform

    if os.environ.get("STASIS_STAGE_IOPRIO", "idle") != "idle":
        return "default"
    nr = _IOPRIO_SET.get(platform.machine())
    if nr is None:
        return "default (unknown architecture)"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(nr, 1, 0, _IOPRIO_CLASS_IDLE << 13) != 0:  # IOPRIO_WHO_PROCESS, this process
        return f"default (ioprio_set: {os.strerror(ctypes.get_errno())})"
    return "idle"


def run(job: dict[str, Any]) -> None:
    start = time.perf_counter()
    from .load import load_targets

    sock = listen(job["socket"])
    ioprio = lower_io_priority()
    _nice()
    rt: DriverRuntime | None = None
    mem: ExportableMemory | None = None
    fd = -1
    try:
        drv = Driver()
        device = drv.device_by_uuid(job["gpu"])
        rt = DriverRuntime(drv, device)
        rt.set_device(device)
        free = rt.free_bytes()
        need = job["arena_size"] + job["reserve_bytes"]
        if free < need:
            raise StasisEngineError("gpu_memory", f"{free / 2**30:.1f} GiB free on {job['gpu']}, staging needs "
                                    f"{need / 2**30:.1f} GiB beside the restore", "the restore refills in place instead")
        mem = ExportableMemory(rt, job["arena_size"])
        stats = load_targets("tensors", targets_at(mem.address, job["tensors"]), Device("cuda", device), job["file"],
                             runtime=rt, threads=_threads(job["file"]), method=_method())
        fd = mem.export_fd()
        _emit({"event": "ready", "bytes": stats.bytes, "seconds": round(time.perf_counter() - start, 4),
               "ioprio": ioprio, "load": stats.to_dict()})
        hand_off(sock, fd, job["arena_size"], float(job["wait_s"]))
        _emit({"event": "handed-off", "seconds": round(time.perf_counter() - start, 4)})
    finally:
        if fd >= 0:
            os.close(fd)
        if mem is not None:
            mem.close()
        if rt is not None:
            rt.release()
        sock.close()
        try:
            os.unlink(job["socket"])
        except FileNotFoundError:
            pass


def main(argv: list[str] | None = None) -> int:
    try:
        run(parse_job(sys.stdin.read()))
    except StasisEngineError as e:
        _emit({"event": "error", "error": e.to_dict()})
        return 1
    except Exception as e:  # noqa: BLE001 - the restore reads one error line whatever failed
        _emit({"event": "error", "error": {"code": "stage_failed", "message": f"{type(e).__name__}: {e}", "hint": None}})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
