"""The HTTP front end (vLLM's API server): spawns the engine, waits for it, then serves vLLM's API.

It never imports torch: tokenization, validation and response shaping happen here, the model runs in the
engine process. Runs on uvloop when it is importable (with libuv's io_uring off: CRIU cannot dump it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from typing import Any

from ..errors import StasisEngineError
from . import http11
from .api import completion_response, error_body, parse_completion, status_for
from .engine_client import EngineProcess
from .options import ServeOptions, model_info, parse_serve_args, read_model_config
from .phases import Phases, emit


class Frontend:
    def __init__(self, opts: ServeOptions, t0: float) -> None:
        self.opts = opts
        self.t0 = t0
        self.info = model_info(opts, read_model_config(opts.model_dir))
        self.phases = Phases()
        self.profile: dict[str, Any] = {}
        self.sleeping = False
        self.engine: EngineProcess | None = None
        self._stop = asyncio.Event()
        self.exit_code = 0

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        sock = bind_socket(self.opts.host, self.opts.port)  # early: a taken port fails now, not after start-up
        self.phases.add("frontend_init", (time.time() - self.t0) * 1000)
        self.engine = EngineProcess.spawn(self.opts)
        try:
            await self.engine.connect()
            ready = asyncio.ensure_future(self.engine.wait_ready())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({ready, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                return 0
            stop.cancel()
            msg = ready.result()
            self.phases.records += msg["phases"]
            with self.phases.phase("http_listen"):
                sock.listen(128)  # only now: until the engine is ready, connections are refused (as vLLM's)
                server = await asyncio.start_server(self._handle, sock=sock, limit=http11.MAX_HEAD)
            port = server.sockets[0].getsockname()[1]
            self.profile = {
                "total_ms": round((time.time() - self.t0) * 1000, 1),
                "phases": self.phases.records,
                **msg["profile"],
                "frontend_pid": os.getpid(),
                "engine_pid": self.engine.proc.pid,
            }
            emit("stasis-startup", self.profile)
            emit(
                "stasis-ready",
                {"url": f"http://{self.opts.host}:{port}", "port": port, "total_ms": self.profile["total_ms"]},
            )
            watch = asyncio.ensure_future(self._watch_engine())
            await self._stop.wait()
            watch.cancel()
            server.close()
            return self.exit_code
        except StasisEngineError as e:
            print(f"stasis-reference: {e}", file=sys.stderr, flush=True)
            return 1
        finally:
            sock.close()
            # Invariant: the engine never outlives the front end (it would hold the GPU with nobody to stop it).
            if self.engine is not None:
                await self.engine.stop()

    async def _watch_engine(self) -> None:
        assert self.engine is not None
        while self.engine.alive():
            await asyncio.sleep(0.2)
        print(
            f"stasis-reference: engine process exited (code {self.engine.proc.poll()}); stopping",
            file=sys.stderr,
            flush=True,
        )
        self.exit_code = 1
        self._stop.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                req = await http11.read_request(reader)
                if req is None:
                    return
                status, body = await self._route(req)
                out = http11.response(status, body)
            except http11.HttpError as e:
                out = http11.json_response(e.status, error_body(e.status, "bad_request", e.message))
            except StasisEngineError as e:
                status = int(e.details.get("status") or status_for(e.code))
                out = http11.json_response(status, error_body(status, e.code, e.message, e.hint))
            except Exception as e:  # a bug here must not take the server down
                out = http11.json_response(500, error_body(500, "internal", f"{type(e).__name__}: {e}"))
            writer.write(out)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _route(self, req: http11.Request) -> tuple[int, bytes]:
        from .routes import ROUTES

        methods = ROUTES.get(req.path)
        if methods is None:
            raise StasisEngineError("not_found", f"no route {req.method} {req.path}", "see docs/reference-engine.md")
        handler = methods.get(req.method)
        if handler is None:
            raise StasisEngineError("method_not_allowed", f"{req.path} takes {', '.join(methods)}, not {req.method}")
        result = await handler(self, req)
        if result is None:
            return 200, b""
        return 200, json.dumps(result, separators=(",", ":")).encode()

    # -- what the routes call -------------------------------------------------------------------------------

    async def engine_call(self, op: str, **args: Any) -> Any:
        assert self.engine is not None
        return await self.engine.call(op, **args)

    async def complete(self, raw: bytes) -> dict[str, Any]:
        req = parse_completion(raw, self.info)
        results = await self.engine_call(
            "generate",
            prompts=req.prompts,
            max_tokens=req.max_tokens,
            logprobs=req.logprobs,
            stop_token_ids=req.stop_token_ids,
        )
        return completion_response(req, results, self.info)


def bind_socket(host: str, port: int) -> socket.socket:
    """The server socket, made here rather than by asyncio: resolving the host inside uvloop would start
    libuv's getaddrinfo thread pool, threads that then live on in every snapshot of this process."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise StasisEngineError(
            "bad_argument",
            f"cannot listen on {host}:{port}: {e.strerror or e}",
            "pick another --port (0: any free port)",
        ) from e
    sock.setblocking(False)
    return sock


def main(argv: list[str], t0: float) -> int:
    os.environ.setdefault("UV_USE_IO_URING", "0")  # before libuv starts: CRIU cannot dump io_uring
    try:
        opts = parse_serve_args(argv)
        frontend = Frontend(opts, t0)
    except StasisEngineError as e:
        print(f"stasis-reference: {e}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]
    try:
        return uvloop.run(frontend.run()) if uvloop is not None else asyncio.run(frontend.run())
    except StasisEngineError as e:
        print(f"stasis-reference: {e}", file=sys.stderr)
        return 2
