"""vLLM's HTTP API on the reference engine: path -> method -> handler(frontend, request) -> JSON-able or None."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import StasisEngineError
from .http11 import Request

if TYPE_CHECKING:
    from .frontend import Frontend

Handler = Callable[["Frontend", Request], Awaitable[Any]]
VERSION = "stasis-reference-0.1.0"


async def health(fe: Frontend, req: Request) -> None:
    # 200 while asleep too (as vLLM): the server is up; is_sleeping says whether it can answer.
    if fe.engine is None or not fe.engine.alive():
        raise StasisEngineError("engine_dead", "the engine process is not running")
    return None


async def models(fe: Frontend, req: Request) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": fe.info.served_name,
                "object": "model",
                "created": int(time.time()),
                "owned_by": "stasis",
                "root": fe.opts.model_dir,
                "parent": None,
                "max_model_len": fe.info.max_model_len,
                "permission": [],
            }
        ],
    }


async def completions(fe: Frontend, req: Request) -> dict[str, Any]:
    return await fe.complete(req.body)


def _one_int(req: Request, name: str, default: int) -> int:
    values = req.query.get(name)
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError as e:
        raise StasisEngineError("bad_request", f"{name}={values[-1]!r}, expected an integer") from e


async def sleep(fe: Frontend, req: Request) -> dict[str, Any]:
    level = _one_int(req, "level", 1)
    if level not in (1, 2):
        raise StasisEngineError("bad_request", f"level={level}, expected 1 or 2")
    return await _sleep_or_wake(fe, "sleep", level=level)


async def wake_up(fe: Frontend, req: Request) -> dict[str, Any]:
    return await _sleep_or_wake(fe, "wake", tags=req.query.get("tags") or None)


async def _sleep_or_wake(fe: Frontend, op: str, **args: Any) -> dict[str, Any]:
    try:
        result = await fe.engine_call(op, **args)
    except StasisEngineError:
        if fe.engine is not None and fe.engine.alive():  # a half-done transition: ask the engine where it stands
            fe.sleeping = bool(await fe.engine_call("is_sleeping"))
        raise
    fe.sleeping = bool(result["is_sleeping"])
    return result


async def is_sleeping(fe: Frontend, req: Request) -> dict[str, Any]:
    return {"is_sleeping": fe.sleeping}


async def collective_rpc(fe: Frontend, req: Request) -> dict[str, Any]:
    try:
        body = json.loads(req.body or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise StasisEngineError("bad_request", f"request body is not valid JSON: {e}") from e
    if not isinstance(body, dict) or not isinstance(body.get("method"), str):
        raise StasisEngineError("bad_request", 'collective_rpc needs {"method": str, "args": [...], "kwargs": {...}}')
    args = body.get("args") or []
    kwargs = body.get("kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise StasisEngineError("bad_request", "collective_rpc: args must be a list and kwargs an object")
    return await fe.engine_call("rpc", method=body["method"], args=args, kwargs=kwargs)


async def reset_prefix_cache(fe: Frontend, req: Request) -> None:
    return None  # no prefix cache in the reference engine: nothing can go stale


async def startup(fe: Frontend, req: Request) -> dict[str, Any]:
    return fe.profile


async def version(fe: Frontend, req: Request) -> dict[str, Any]:
    return {"version": VERSION}


ROUTES: dict[str, dict[str, Handler]] = {
    "/health": {"GET": health},
    "/v1/models": {"GET": models},
    "/v1/completions": {"POST": completions},
    "/sleep": {"POST": sleep},
    "/wake_up": {"POST": wake_up},
    "/is_sleeping": {"GET": is_sleeping},
    "/collective_rpc": {"POST": collective_rpc},
    "/reset_prefix_cache": {"POST": reset_prefix_cache},
    "/stasis/startup": {"GET": startup},
    "/version": {"GET": version},
}
