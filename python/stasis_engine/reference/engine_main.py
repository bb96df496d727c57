"""The engine process: started by the front end with one end of a unix socket pair, never by hand.

    python -m stasis_engine.reference engine --fd N --options JSON --t-spawn UNIX_TIME

It starts the engine (every phase timed), sends ``{"event": "ready", "profile": ...}`` (or ``"failed"``),
then answers one request at a time until the socket closes or a ``shutdown`` request arrives.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import traceback
from typing import Any

# Before torch is imported. Inductor compiles with a pool of worker processes, one per core (compiling the 3B decode
# step on one thread takes minutes), over the 1 that stasis's launch sets for other servers (src/launch/launch.ts):
# the runner shuts the pool down once compiled, so no worker is left in the process tree for CRIU to dump. Nothing
# reaches for the hub.
os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = str(os.cpu_count() or 1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ..errors import StasisEngineError
from . import wire
from .api import status_for
from .options import ServeOptions
from .phases import Phases


def error_dict(e: BaseException) -> dict[str, Any]:
    if isinstance(e, StasisEngineError):
        return {**e.to_dict(), "status": status_for(e.code)}
    return {"code": "internal", "message": f"{type(e).__name__}: {e}", "hint": "see the engine log", "status": 500}


def main(argv: list[str]) -> int:
    entered = time.time()
    p = argparse.ArgumentParser(prog="python -m stasis_engine.reference engine")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--options", required=True)
    p.add_argument("--t-spawn", type=float, required=True)
    a = p.parse_args(argv)
    sock = socket.socket(fileno=a.fd)
    opts = ServeOptions.from_json(a.options)
    phases = Phases()
    phases.add("spawn_engine", (entered - a.t_spawn) * 1000)
    try:
        with phases.phase("import"):
            import torch  # noqa: F401 (timed here, used by the engine)
            import transformers.models.llama.modeling_llama  # noqa: F401

            from .engine import Engine
        engine = Engine(opts, phases)
        engine.start()
        wire.send(sock, {"event": "ready", "phases": phases.records, "profile": engine.profile_extra()})
    except BaseException as e:
        traceback.print_exc()
        wire.send(sock, {"event": "failed", "error": error_dict(e)})
        return 1
    serve(engine, sock)
    return 0


def serve(engine: Any, sock: socket.socket) -> None:
    ops = {
        "generate": lambda a: engine.generate(a["prompts"], a["max_tokens"], a.get("logprobs"), a["stop_token_ids"]),
        "sleep": lambda a: engine.sleep(a["level"]),
        "wake": lambda a: engine.wake(a.get("tags")),
        "is_sleeping": lambda a: engine.is_sleeping(),
        "status": lambda a: engine.status(),
        "rpc": lambda a: {"results": [engine.rpc.call(a["method"], a.get("args", []), a.get("kwargs", {}))]},
        "shutdown": lambda a: None,
    }
    while True:
        msg = wire.recv(sock)
        if msg is None:
            return  # the front end is gone: so are we
        op = msg.get("op")
        try:
            if op not in ops:
                raise StasisEngineError("bad_request", f"unknown engine op {op!r}")
            reply = {"id": msg.get("id"), "ok": True, "result": ops[op](msg.get("args") or {})}
        except Exception as e:
            if not isinstance(e, StasisEngineError):
                traceback.print_exc()
            reply = {"id": msg.get("id"), "ok": False, "error": error_dict(e)}
        wire.send(sock, reply)
        if op == "shutdown":
            return


def run(argv: list[str]) -> None:
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: nothing is left to persist, and tearing down CUDA objects (graphs, arenas,
    # compiled code) one by one only delays the exit the front end is waiting for.
    os._exit(code)
