"""The front end's side of the engine process: spawn it, wait until it is ready, send it one request at a time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from ..errors import StasisEngineError
from . import wire
from .options import ServeOptions


class EngineProcess:
    """The spawned engine and the socket to it. ``call`` serializes requests: the engine runs one at a time."""

    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.proc = proc
        self._sock = sock
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._next_id = 0
        self.dead = False

    @staticmethod
    def spawn(opts: ServeOptions) -> EngineProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable,
            "-m",
            "stasis_engine.reference",
            "engine",
            "--fd",
            str(theirs.fileno()),
            "--options",
            opts.to_json(),
            "--t-spawn",
            repr(time.time()),
        ]
        try:
            proc = subprocess.Popen(cmd, pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        finally:
            theirs.close()  # invariant: only the engine holds its end, so its exit shows here as EOF
        return EngineProcess(proc, ours)

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=wire.MAX_MESSAGE)

    async def wait_ready(self) -> dict[str, Any]:
        assert self._reader is not None
        msg = await wire.arecv(self._reader)
        if msg is None:
            code = self.proc.wait()
            raise StasisEngineError(
                "engine_dead",
                f"the engine process exited during start-up (exit code {code})",
                "see the engine's output above",
            )
        if msg.get("event") != "ready":
            err = msg.get("error") or {}
            raise StasisEngineError(
                err.get("code", "engine_failed"), err.get("message", "engine failed to start"), err.get("hint")
            )
        return msg

    async def call(self, op: str, **args: Any) -> Any:
        async with self._lock:
            if self.dead or self._writer is None or self._reader is None:
                raise StasisEngineError("engine_dead", "the engine process is not running", "restart the server")
            self._next_id += 1
            try:
                await wire.asend(self._writer, {"id": self._next_id, "op": op, "args": args})
                reply = await wire.arecv(self._reader)
                while reply is not None and reply.get("id") != self._next_id:  # a late start-up event: skip it
                    reply = await wire.arecv(self._reader)
            except (ConnectionError, OSError):
                reply = None
            if reply is None:
                self.dead = True
                raise StasisEngineError("engine_dead", "the engine process exited", "see the engine's output")
        if not reply.get("ok"):
            err = reply["error"]
            e = StasisEngineError(err["code"], err["message"], err.get("hint"))
            e.details["status"] = err.get("status", 500)
            raise e
        return reply.get("result")

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    async def stop(self, grace_s: float = 10.0) -> int:
        """Ask the engine to exit, then make sure it has: SIGTERM, and SIGKILL after ``grace_s``."""
        if self.proc.poll() is None and not self.dead:
            with contextlib.suppress(TimeoutError, StasisEngineError):
                await asyncio.wait_for(self.call("shutdown"), timeout=grace_s / 2)
        deadline = time.monotonic() + grace_s
        signalled = False
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                break
            if not signalled and time.monotonic() > deadline - grace_s / 2:
                self.proc.send_signal(signal.SIGTERM)
                signalled = True
            await asyncio.sleep(0.05)
        if self._writer is not None:
            self._writer.close()
        return self.proc.wait()
