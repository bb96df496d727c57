"""``python -m stasis_engine.weights.stage``: fill an engine's weights into fresh GPU memory while it is restored.

The restore's refill used to wait for CRIU and the CUDA restore; the stager runs beside them. It reads a job
(JSON on stdin), creates device memory the size of the engine's weights arena on the engine's GPU, fills it
from the weights file with the same pipelines as ``load_into`` (driver API, no torch: it starts in tens of ms),
then hands the memory to the engine as a file descriptor over a Unix socket. The engine maps it at its arena's
addresses (``stasis_adopt_weights``): the weights are in place without a copy on the restore's path.

The lines' exact shapes are the contracts ``contracts/stage-job.schema.json``, ``stage-control`` (the other stdin
lines) and ``stager-line`` (stdout), generated from ``src/contracts/stage.ts``; tests/test_contracts.py and the
stager's tests check this module against them. What they mean:

Job (one JSON line on stdin): ``{"file": PATH, "gpu": UUID, "socket": PATH, "arena_size": N, "tensors": [{"name",
"offset", "nbytes", "dtype", "shape"}], "reserve_bytes": N, "wait_s": S, "hold": B}``; an engine whose weights are
several allocations (vLLM's weights pool) sends ``"extents": [{"address", "size"}]`` instead of ``arena_size`` and
``tensors``: the stager then makes one allocation per extent and hands them all over, each to be mapped back at its
own address. ``reserve_bytes``: GPU memory
to leave free for the rest of the restore (the CUDA restore of the engine runs at the same time); without it, the
stager refuses. ``hold``: when the file is not in the page cache, create the memory but read nothing until a line
``{"op": "go"}`` (the keeper's: ``{"op": "go", "id": ...}``) comes, stdin closes, or ``wait_s`` passes: the restore
sends it once its prefetch of CRIU's images is done or CRIU's restore is, so the two do not share the disk while
CRIU needs it (why: docs/decisions/0002-stage-hold.md).

Stdout, one JSON object per line: ``{"event": "ready", "bytes", "seconds", "load": {...}}`` once the memory is
filled and the socket listens; ``{"event": "handed-off", "seconds"}`` once the engine acknowledged; or
``{"event": "error", "error": {"code", "message", "hint"}}`` (exit status 1). Nothing outlives the process
but the memory the engine imported.

``--keep``: the long-lived form ``stasis serve --pin-weights`` runs (``Keeper`` below): one job per stdin line, each
with an ``id`` that its answer lines carry; it keeps its CUDA contexts and a pinned image of each weights file.
After a job's hand-off it may also write ``{"event": "pinned", "id", "bytes", "seconds"}`` (the file's image is
now pinned for the next job) or ``{"event": "pin-failed", "id", "message"}`` (it is not; the job was not affected).
A line ``{"op": "pin", "id", "file", "gpu", "arena_size", "tensors"}`` (a job without a socket) pins the file's image
ahead of any job (``stasis prefetch --snapshot``, through ``stasis serve``), so that even the first restore finds it;
the answer is ``pinned`` (with ``"already": true`` where the image was pinned before) or ``pin-failed``.
"""

from __future__ import annotations

import functools
import json
import os
import select
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import StasisEngineError
from ._cudadrv import Driver, DriverRuntime, ExportableMemory
from ._targets import Device, Target
from .handoff import send_memory
from .load import LoadTuning, file_resident, load_targets

ACK = b"ok"


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Lines:
    """The lines of a file descriptor (the stager's stdin): ``next()`` blocks for the next one, ``wait_for(match,
    timeout)`` waits for one that matches and keeps the others, in order, for ``next()`` (a job holding its reads
    waits for its go line while the keeper's next job or a release waits its turn). Raw reads and select, so a
    timeout sees lines already read ahead."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.buf = b""
        self.eof = False
        self.kept: deque[str] = deque()

    def _read(self, deadline: float | None) -> str | None:
        """The next line read from the descriptor; None at the end of input or the deadline."""
        while b"\n" not in self.buf:
            if self.eof:
                line, self.buf = self.buf, b""
                return line.decode() if line else None
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.fd], [], [], timeout)[0]:
                return None
            chunk = os.read(self.fd, 1 << 16)
            self.eof = not chunk
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def next(self) -> str | None:
        """The next line not taken by ``wait_for``; None at the end of input."""
        return self.kept.popleft() if self.kept else self._read(None)

    def wait_for(self, match: Callable[[str], bool], timeout: float) -> bool:
        """True once a line that ``match``es came (it is consumed); False at the end of input or the timeout."""
        for i, line in enumerate(self.kept):
            if match(line):
                del self.kept[i]
                return True
        deadline = time.monotonic() + timeout
        while (got := self._read(deadline)) is not None:
            if match(got):
                return True
            self.kept.append(got)
        return False


def _wait_go(lines: Lines, job_id: Any, timeout: float) -> bool:
    """Waits for the go line of the job ``job_id`` (a keeper's hold)."""
    return lines.wait_for(go_line(job_id), timeout)


def go_line(job_id: Any) -> Callable[[str], bool]:
    """Matches the go line of the job ``job_id`` (None: the one-shot stager's, which carries no id)."""

    def match(line: str) -> bool:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            return False
        return isinstance(obj, dict) and obj.get("op") == "go" and obj.get("id") == job_id

    return match


def parse_job(text: str, *, socket_needed: bool = True) -> dict[str, Any]:
    """The job, checked: every field present and of its type, its layout inside its memory and not overlapping
    (``socket_needed=False``: a keeper's pin, which hands nothing over).

    Two layouts: ``tensors`` at offsets of one ``arena_size`` allocation (the reference engine's arena), or
    ``extents``: the engine's allocations by address and size (vLLM's weights pool, one allocation per extent,
    each mapped back at its own address). The job comes out with ``pieces`` (the allocations' sizes, in order) and
    ``arena_size`` (their sum) either way."""
    try:
        job = json.loads(text)
    except json.JSONDecodeError as e:
        raise StasisEngineError("bad_argument", f"the stager's job is not JSON: {e}") from e
    if not isinstance(job, dict):
        raise StasisEngineError("bad_argument", "the stager's job must be a JSON object")
    extents = "extents" in job
    fields: list[tuple[str, type]] = [("file", str), ("gpu", str), ("socket", str)]
    fields += [("extents", list)] if extents else [("arena_size", int), ("tensors", list)]
    for key, kind in fields:
        if key == "socket" and not socket_needed:
            continue
        if not isinstance(job.get(key), kind) or isinstance(job.get(key), bool):
            raise StasisEngineError("bad_argument", f"the stager's job needs {key!r} ({kind.__name__})")
    job.setdefault("reserve_bytes", 0)
    job.setdefault("wait_s", 120)
    job.setdefault("hold", False)
    if not isinstance(job["hold"], bool):
        raise StasisEngineError("bad_argument", "the stager's job has a non-boolean 'hold'")
    if extents:
        _check_extents(job["extents"])
        job["pieces"] = [e["size"] for e in job["extents"]]
        job["arena_size"] = sum(job["pieces"])
        return job
    end = 0
    for t in sorted(job["tensors"], key=lambda t: t.get("offset", -1) if isinstance(t, dict) else -1):
        if (
            not isinstance(t, dict)
            or not isinstance(t.get("name"), str)
            or not isinstance(t.get("offset"), int)
            or not isinstance(t.get("nbytes"), int)
            or t["offset"] < 0
            or t["nbytes"] < 0
        ):
            raise StasisEngineError("bad_argument", f"bad tensor in the stager's job: {t!r}")
        if t["offset"] < end or t["offset"] + t["nbytes"] > job["arena_size"]:
            raise StasisEngineError(
                "weights_layout",
                f"tensor {t['name']!r} overlaps another or leaves the arena "
                f"({t['offset']}+{t['nbytes']} of {job['arena_size']} bytes)",
            )
        end = t["offset"] + t["nbytes"]
    job["pieces"] = [job["arena_size"]]
    return job


def _check_extents(extents: list[Any]) -> None:
    """Extents in address order, each of a positive size, none overlapping the next."""
    if not extents:
        raise StasisEngineError("bad_argument", "the stager's job has no extents")
    end = 0
    for e in extents:
        if (
            not isinstance(e, dict)
            or not all(isinstance(e.get(k), int) and not isinstance(e.get(k), bool) for k in ("address", "size"))
            or e["size"] <= 0
            or e["address"] < 0
        ):
            raise StasisEngineError("bad_argument", f"bad extent in the stager's job: {e!r}")
        if e["address"] < end:
            raise StasisEngineError(
                "weights_layout", f"extent {e['address']:#x} overlaps the one before it or is out of address order"
            )
        end = e["address"] + e["size"]


def targets_at(base: int, tensors: list[dict[str, Any]]) -> list[Target]:
    """The job's tensors as load targets at ``base``; one group, so neighbours coalesce into long copies."""
    return [
        Target(
            t["name"],
            base + t["offset"],
            t["nbytes"],
            t.get("dtype"),
            tuple(t["shape"]) if isinstance(t.get("shape"), list) else None,
            0,
        )
        for t in tensors
    ]


def job_targets(job: dict[str, Any], base: int) -> tuple[str, list[Target]]:
    """The job's layout as load targets in memory at ``base``: its tensors at their offsets, or its extents one
    after the other (the stager's memory holds them back to back; each is handed over as an allocation of its own)."""
    if "extents" not in job:
        return "tensors", targets_at(base, job["tensors"])
    out, offset = [], 0
    for e in job["extents"]:
        out.append(Target(e["address"], base + offset, e["size"]))
        offset += e["size"]
    return "extents", out


def listen(path: str) -> socket.socket:
    """A listening socket at ``path``, which appears there only once it listens (bound under a temporary name, then
    renamed): whoever waits for the path can connect as soon as it exists (bound at ``path`` itself, a connect
    between bind and listen was refused)."""
    tmp = path + ".t"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(tmp)
        os.chmod(tmp, 0o600)
        sock.listen(1)
        os.replace(tmp, path)
    except BaseException:
        sock.close()
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return sock


def hand_off(sock: socket.socket, fds: list[int], pieces: list[int], wait_s: float) -> None:
    """Sends the memory (``fds``, one per allocation of ``pieces`` bytes) to the first process that connects and
    waits for its acknowledgement (``handoff.send_memory`` says how it is framed)."""
    sock.settimeout(wait_s)
    try:
        conn, _ = sock.accept()
    except TimeoutError as e:
        raise StasisEngineError("stage_timeout", f"no engine took the weights within {wait_s:.0f} s") from e
    with conn:
        conn.settimeout(wait_s)
        send_memory(conn, fds, pieces)
        answer = conn.recv(4096)
    if answer != ACK:
        raise StasisEngineError(
            "stage_refused", f"the engine did not take the weights: {answer.decode(errors='replace') or 'no answer'}"
        )


_IN_MEMORY = 0.98


def _threads(resident: float) -> int:
    """By where the file is (``resident``: the fraction in the page cache). In the page cache: 8 (copies are CPU work
    that CRIU and the CUDA restore beside it also need). On disk: 16 (reads wait on the disk; more in flight keep it
    busy). Why: docs/decisions/0007-weights-cold-and-stager.md."""
    return 8 if resident >= _IN_MEMORY else 16


def _resident(path: str) -> float | None:
    """The fraction of the file in the page cache (None where mincore cannot tell, or for an empty file, which the
    load then refuses as truncated)."""
    return file_resident(path)


_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}
_IOPRIO_CLASS_IDLE = 3


def lower_io_priority() -> str:
    """Puts this process's disk reads in the idle I/O class: from a cold disk, CRIU's many small reads (metadata
    images, the build-ids of the libraries it maps) otherwise wait behind the stager's deep queue of large reads, and
    CRIU is what the restore waits for first (why: docs/decisions/0007-weights-cold-and-stager.md). The kernel's
    mq-deadline and bfq schedulers honour the class; "none" does not. Returns what was done, for the report."""
    import ctypes
    import platform

    nr = _IOPRIO_SET.get(platform.machine())
    if nr is None:
        return "default (unknown architecture)"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(nr, 1, 0, _IOPRIO_CLASS_IDLE << 13) != 0:  # IOPRIO_WHO_PROCESS, this process
        return f"default (ioprio_set: {os.strerror(ctypes.get_errno())})"
    return "idle"


def serve_job(job: dict[str, Any], rt: DriverRuntime, fill: Any, extra: dict[str, Any]) -> None:
    """One job: listen, create the memory, ``fill(mem)`` it (returns the fill's stats), export it, report ready,
    hand it over, report that. Nothing of the job outlives it but the memory the engine imported."""
    start = time.perf_counter()
    sock = listen(job["socket"])
    mem: ExportableMemory | None = None
    fds: list[int] = []
    try:
        rt.set_device(rt.device)
        free = rt.free_bytes()
        need = job["arena_size"] + job["reserve_bytes"]
        if free < need:
            raise StasisEngineError(
                "gpu_memory",
                f"{free / 2**30:.1f} GiB free on {job['gpu']}, staging needs {need / 2**30:.1f} GiB beside the restore",
                "the restore refills in place instead",
            )
        mem = rt.exportable(job["arena_size"], job["pieces"])
        stats = fill(mem)
        fds = mem.export_fds()
        _emit(
            {
                "event": "ready",
                **extra,
                "bytes": stats.get("bytes", job["arena_size"]),
                "seconds": round(time.perf_counter() - start, 4),
                "load": stats,
            }
        )
        hand_off(sock, fds, job["pieces"], float(job["wait_s"]))
        _emit({"event": "handed-off", **extra, "seconds": round(time.perf_counter() - start, 4)})
    finally:
        for fd in fds:
            os.close(fd)
        if mem is not None:
            mem.close()
        sock.close()
        try:
            os.unlink(job["socket"])
        except FileNotFoundError:
            pass


Hold = Callable[[float], bool]


def fill_from_file(job: dict[str, Any], rt: DriverRuntime, mem: ExportableMemory, hold: Hold) -> dict[str, Any]:
    """Fills the job's memory from its weights file with the load pipelines (its stats). A job with ``hold`` whose
    file is not in the page cache waits for its go (``hold(wait_s)``: True once it came) once the load is set up
    (header read, file opened, pinned ring made: the load's gate), so the reads start the moment it comes; the
    stats then say how long it waited (``held_s``) and whether the go came (``go``: false when stdin closed or the
    wait ran out)."""
    measured = _resident(job["file"])  # the loader's "auto" chooses by it too, rather than measure it again
    resident = measured or 0.0
    held: dict[str, Any] = {}

    def gate() -> None:
        if job["hold"] and resident < _IN_MEMORY:
            t = time.perf_counter()
            held["go"] = hold(float(job["wait_s"]))
            held["held_s"] = round(time.perf_counter() - t, 4)

    kind, targets = job_targets(job, mem.address)
    tuning = LoadTuning(threads=_threads(resident))
    stats = load_targets(
        kind, targets, Device("cuda", rt.device), job["file"], tuning, runtime=rt, gate=gate, resident=measured
    ).to_dict()
    return {**stats, **held}


def run(job: dict[str, Any], lines: Lines) -> None:
    """The one-shot stager: fills the memory from the file with the load pipelines (a held job waits for its go
    on ``lines``)."""
    ioprio = lower_io_priority()
    drv = Driver()
    rt = DriverRuntime(drv, drv.device_by_uuid(job["gpu"]))
    try:
        serve_job(
            job,
            rt,
            lambda mem: fill_from_file(job, rt, mem, lambda s: lines.wait_for(go_line(None), s)),
            {"ioprio": ioprio},
        )
    finally:
        rt.release()


class Keeper:
    """``--keep``: a long-lived stager (``stasis serve --pin-weights``). It keeps each weights file it is asked for as
    an image of the engine's arena in pinned host memory, so a later job only creates the GPU memory and copies that
    image in with one host-to-GPU copy (the link's speed, no CPU work beside the restore), and it keeps its CUDA
    contexts, so no start-up either. The first job for a file is filled straight from the file, as the one-shot stager
    does, and the image is pinned after its hand-off (docs/decisions/0003-weights-keeper.md). Jobs come one JSON line at
    a time on stdin, each with an ``id`` that its answer lines carry. At most ``--max-images`` images (default 2)
    stay pinned, least recently used freed."""

    def __init__(self, open_runtime: Callable[[str], DriverRuntime] | None = None, max_images: int = 2) -> None:
        self._open = open_runtime or self._driver_runtime
        self.drv: Driver | None = None
        self.runtimes: dict[str, DriverRuntime] = {}
        self.streams: dict[str, int] = {}
        self.images: dict[tuple[Any, ...], tuple[DriverRuntime, int]] = {}  # key -> (its runtime, pinned address)
        self.max_images = max_images

    def _driver_runtime(self, gpu: str) -> DriverRuntime:
        self.drv = self.drv or Driver()
        return DriverRuntime(self.drv, self.drv.device_by_uuid(gpu))

    def runtime(self, gpu: str) -> DriverRuntime:
        if gpu not in self.runtimes:
            rt = self.runtimes[gpu] = self._open(gpu)
            rt.set_device(rt.device)
            self.streams[gpu] = rt.stream_create()
        return self.runtimes[gpu]

    @staticmethod
    def image_key(job: dict[str, Any]) -> tuple[Any, ...]:
        """What an image is an image of: the file as it is now, and the arena's layout."""
        import hashlib

        st = os.stat(job["file"])
        layout = hashlib.sha256(json.dumps(job.get("extents", job.get("tensors")), sort_keys=True).encode()).hexdigest()
        return (os.path.realpath(job["file"]), st.st_ino, st.st_size, st.st_mtime_ns, job["arena_size"], layout)

    def pin(self, key: tuple[Any, ...], job: dict[str, Any], rt: DriverRuntime) -> None:
        """Reads the job's file into a new pinned image of its arena, first freeing the images of the same file
        (rewritten since) and the least recently used beyond the limit."""
        changed = [k for k in self.images if k[0] == key[0]]
        oldest = [k for k in self.images if k not in changed][
            : max(0, len(self.images) - len(changed) - self.max_images + 1)
        ]
        for old in changed + oldest:
            owner, address = self.images.pop(old)
            owner.host_free(address)
        host = rt.host_alloc(job["arena_size"])
        try:
            load_targets(*job_targets(job, host), Device("cpu"), job["file"], LoadTuning(method="cpu", threads=16))
        except BaseException:
            rt.host_free(host)
            raise
        self.images[key] = (rt, host)

    def pin_ahead(self, job: dict[str, Any]) -> None:
        """A pin line: the job's file pinned as an image now, before any job asks for it; answers ``pinned`` (with
        ``already`` where it was) or ``pin-failed``."""

        def pin() -> dict[str, Any]:
            key = self.image_key(job)
            already = key in self.images
            if already:
                self.images[key] = self.images.pop(key)  # most recently used last
            else:
                self.pin(key, job, self.runtime(job["gpu"]))
            return {"already": already}

        self._pin_said(job, pin)

    def held_bytes(self) -> int:
        """Bytes of pinned images held now (``stasis serve``'s metrics)."""
        return sum(int(key[4]) for key in self.images)

    def _pin_said(self, job: dict[str, Any], pin: Callable[[], dict[str, Any]]) -> None:
        """Runs ``pin`` and says how it went: ``pinned`` (the image's size, how long, and what ``pin`` returned) or
        ``pin-failed`` (why; the keeper goes on, and the next job reads the file); either with ``held``, the bytes of
        all the images pinned now (a pin may have freed others)."""
        start = time.perf_counter()
        try:
            said = pin()
        except Exception as e:  # noqa: BLE001 - said to the caller; the keeper goes on
            _emit(
                {
                    "event": "pin-failed",
                    "id": job.get("id"),
                    "message": f"{type(e).__name__}: {e}",
                    "held": self.held_bytes(),
                }
            )
            return
        _emit(
            {
                "event": "pinned",
                "id": job.get("id"),
                "bytes": job["arena_size"],
                "seconds": round(time.perf_counter() - start, 4),
                "held": self.held_bytes(),
                **said,
            }
        )

    def serve(self, job: dict[str, Any], hold: Hold = lambda s: True) -> None:
        """One job; ``hold``: how a held job waits for its go (from the file only: an image is in memory)."""
        rt = self.runtime(job["gpu"])
        stream = self.streams[job["gpu"]]
        key = self.image_key(job)
        image = self.images.pop(key, None)
        if image is None:
            serve_job(
                job,
                rt,
                lambda mem: {**fill_from_file(job, rt, mem, hold), "image": "pinned after the hand-off"},
                {"id": job.get("id")},
            )

            def pin() -> dict[str, Any]:  # the job is done: a failure here only means the next one reads the file
                self.pin(key, job, rt)
                return {}

            self._pin_said(job, pin)
            return
        self.images[key] = image  # most recently used last
        host = image[1]

        def fill(mem: ExportableMemory) -> dict[str, Any]:
            t = time.perf_counter()
            rt.memcpy_async(mem.address, host, job["arena_size"], 1, stream)
            rt.stream_synchronize(stream)
            copy = time.perf_counter() - t
            return {
                "bytes": job["arena_size"],
                "method": "pinned-image",
                "copy_seconds": round(copy, 4),
                "copy_gbps": round(job["arena_size"] / copy / 1e9, 2) if copy > 0 else None,
            }

        serve_job(job, rt, fill, {"id": job.get("id")})

    def release_images(self) -> int:
        """Frees every pinned image (``stasis serve``'s POST /v1/weights/release) and keeps the CUDA contexts: the
        next job reads its file again, with no start-up. Returns how many images were freed."""
        freed = len(self.images)
        for owner, address in self.images.values():
            owner.host_free(address)
        self.images.clear()
        return freed

    def close(self) -> None:
        self.release_images()
        for rt in self.runtimes.values():
            rt.release()


def keep(max_images: int = 2) -> int:
    """The keeper's loop: one job per stdin line until stdin closes; a failed job answers an error line and the
    keeper goes on with the next. A pin line pins a file's image ahead (``Keeper.pin_ahead``). A line
    ``{"op": "release", "id": ...}`` frees the pinned images instead and
    answers ``{"event": "released", "id": ..., "images": N}``; a go line for a job that did not hold (its file was
    in memory) or is done is dropped."""
    lower_io_priority()
    keeper: Keeper | None = None
    lines = Lines(sys.stdin.fileno())
    try:
        while (line := lines.next()) is not None:
            if not line.strip():
                continue
            job_id = None
            try:
                raw = json.loads(line)
                job_id = raw.get("id") if isinstance(raw, dict) else None
                if isinstance(raw, dict) and raw.get("op") == "release":
                    _emit(
                        {
                            "event": "released",
                            "id": job_id,
                            "images": keeper.release_images() if keeper else 0,
                            "held": 0,
                        }
                    )
                    continue
                if isinstance(raw, dict) and raw.get("op") == "go":
                    continue
                if isinstance(raw, dict) and raw.get("op") == "pin":
                    keeper = keeper or Keeper(max_images=max_images)
                    keeper.pin_ahead(parse_job(line, socket_needed=False))
                    continue
                job = parse_job(line)
                keeper = keeper or Keeper(max_images=max_images)
                keeper.serve(job, functools.partial(_wait_go, lines, job_id))
            except StasisEngineError as e:
                _emit({"event": "error", "id": job_id, "error": e.to_dict()})
            except Exception as e:  # noqa: BLE001 - one job's failure is reported, the keeper goes on
                _emit(
                    {
                        "event": "error",
                        "id": job_id,
                        "error": {"code": "stage_failed", "message": f"{type(e).__name__}: {e}", "hint": None},
                    }
                )
    finally:
        if keeper is not None:
            keeper.close()
    return 0


def _max_images(args: list[str]) -> int:
    """``--max-images N`` (the daemon passes its ``--pin-weights-max``), else 2."""
    if not args:
        return 2
    if len(args) == 2 and args[0] == "--max-images" and args[1].isdigit() and int(args[1]) > 0:
        return int(args[1])
    raise StasisEngineError("bad_argument", f"stage --keep takes --max-images N (N >= 1), not {' '.join(args)!r}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--keep"]:
        return keep(_max_images(args[1:]))
    try:
        lines = Lines(sys.stdin.fileno())
        run(parse_job(lines.next() or ""), lines)
    except StasisEngineError as e:
        _emit({"event": "error", "error": e.to_dict()})
        return 1
    except Exception as e:  # noqa: BLE001 - the restore reads one error line whatever failed
        _emit(
            {"event": "error", "error": {"code": "stage_failed", "message": f"{type(e).__name__}: {e}", "hint": None}}
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
